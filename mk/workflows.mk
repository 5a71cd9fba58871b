# Workflows for conversation designers, ML staff and reviewers (issue 7).
# Included by the Makefile (-include mk/*.mk). Guides: docs/designers.md, docs/ml.md, docs/reviewers.md.
#
#   make validate       rasa data validate + the project's own checks (scripts/check_data.py)
#   make check-data     only the project's own checks: file:line - what to fix
#   make evaluate       train if needed, per-language NLU reports, story tests, model card -> results/
#                       MODEL=path/to/model.tar.gz   evaluate that model instead
#                       CONFIG=configs/x.yml         train models/x.tar.gz with that config and evaluate it
#                       (includes the off-topic section: results/oos.md, docs/nlu-evaluation.md)
#   make evaluate-oos   only the off-topic false-command rate + in-scope held-out accuracy (MODEL=...)
#   make compare A=config.yml B=configs/x.yml        per-language cross-validation of two configs
#   make compare A=models/a.tar.gz B=models/b.tar.gz two models on the same data -> results/compare.md
#   make interactive    action server + rasa interactive (correct a conversation, save it as a test story)
#   make shell          (in the Makefile) a free chat in the terminal

.PHONY: check-data evaluate evaluate-oos compare interactive workflows-help

OUT ?= results
FOLDS ?= 3
INTERACTIVE_PORT ?= 5005
ACTIONS_PORT ?= 5055

# `make validate` (Makefile: rasa data validate --fail-on-warnings) also runs our checks, first.
validate: check-data

check-data: setup
	$(PY) scripts/check_data.py $(CHECK_FLAGS)

evaluate: setup
	$(PY) scripts/evaluate.py --out $(OUT)$(if $(filter command line,$(origin MODEL)), --model $(MODEL))$(if $(CONFIG), --config $(CONFIG)) $(EVALUATE_FLAGS)

# Only the off-topic measurement (held-out native utterances taken as commands, in-scope held-out
# accuracy) of models/bakame.tar.gz or MODEL=...: no training, no story tests (~1 minute).
evaluate-oos: setup
	$(PY) scripts/evaluate.py --oos-only --out $(OUT)$(if $(filter command line,$(origin MODEL)), --model $(MODEL))

compare: setup
	@if [ -z "$(A)" ] || [ -z "$(B)" ]; then \
	  echo "usage: make compare A=config.yml B=configs/other.yml   (or A=models/a.tar.gz B=models/b.tar.gz)"; exit 2; fi
	$(PY) scripts/compare_models.py $(A) $(B) --out $(OUT) --folds $(FOLDS) $(COMPARE_FLAGS)

# Starts the action server when none answers on ACTIONS_PORT (log: logs/actions.log), then
# rasa interactive with the trained model. --e2e: saved stories keep the learner's words, so
# they can be appended to tests/test_stories.yml as test stories (docs/reviewers.md).
interactive: train
	@mkdir -p logs
	@curl -fs localhost:$(ACTIONS_PORT)/health >/dev/null 2>&1 || { \
	  echo "Starting the action server on :$(ACTIONS_PORT) (logs/actions.log)"; \
	  $(RASA) run actions --actions actions --port $(ACTIONS_PORT) >logs/actions.log 2>&1 & \
	  for i in $$(seq 1 60); do curl -fs localhost:$(ACTIONS_PORT)/health >/dev/null 2>&1 && break; sleep 1; done; }
	$(RASA_MAIN) interactive --model $(MODEL) --endpoints endpoints.yml --port $(INTERACTIVE_PORT) --e2e --skip-visualization

workflows-help:
	@sed -n '2,13p' mk/workflows.mk
