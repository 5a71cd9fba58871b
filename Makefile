# BAKAME: `make run` to talk to the assistant, `make test` to check everything.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
# Rasa Core (server, shell, interactive, story tests) with the project's patches (infra/rasa_main.py).
RASA_MAIN := $(PY) -m infra.rasa_main
MODEL := models/bakame.tar.gz
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 3
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: setup system-packages train run shell sim actions validate test test-unit test-stories nlu-report clean help

help:
	@echo "make run | make test | make shell | make sim | make train | make validate | make nlu-report"

# Virtualenv with the pinned dependencies; rebuilt when requirements.lock changes.
$(VENV)/.installed: requirements.lock scripts/find_python310.sh
	@py=$$(scripts/find_python310.sh) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	  rm -rf $(VENV); echo "Creating $(VENV) with $$py"; $$py -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade "pip==24.0"
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $@

setup: $(VENV)/.installed

train: setup
	@scripts/train_if_needed.sh

run: train
	@scripts/run.sh

actions: setup
	$(RASA) run actions --actions actions --port 5055

# A terminal chat with the real action server (started here if it is not running).
shell: train
	@curl -fs localhost:5055/health >/dev/null 2>&1 || { $(RASA) run actions --actions actions --port 5055 >logs/actions.log 2>&1 & sleep 8; }
	$(RASA_MAIN) shell --model $(MODEL) --endpoints endpoints.yml

# Chat as a learner through the HTTP API of a running `make run` (USSD=1: as a phone's USSD screen).
sim: setup
	$(PY) scripts/sim.py $(if $(USSD),--ussd)

validate: setup
	$(RASA) data validate --fail-on-warnings

test-unit: setup
	$(PY) -m pytest -q

test-stories: train
	$(RASA_MAIN) test core --model $(MODEL) --stories tests/test_stories.yml --fail-on-prediction-errors --out results/stories

# Debian packages some tests use (word list, nginx, chromium), installed when missing.
system-packages:
	@scripts/install_system_packages.sh

test: system-packages train validate test-unit test-stories
	@echo "All checks passed."

# Per-language NLU cross-validation (intent F1 for en and rw), written to results/nlu-<lang>.
nlu-report: setup
	@for lang in en rw; do \
	  $(RASA) test nlu --nlu data/nlu/$$lang --config config.yml --cross-validation --folds 5 --out results/nlu-$$lang || exit 1; \
	done
	$(PY) scripts/nlu_summary.py results/nlu-en results/nlu-rw

clean:
	rm -rf results .make $(MODEL) models/.fingerprint

# Feature-specific targets (production stack, benchmarks, designer/ML workflows).
-include mk/*.mk
