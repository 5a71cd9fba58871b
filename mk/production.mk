# Production stack (issue 5): Redis tracker + lock store, PostgreSQL event broker.
# Included by the Makefile (-include mk/*.mk). See README, "Production".
#
#   make run-prod      action server + Rasa with endpoints.prod.yml / credentials.prod.yml,
#                      stores from REDIS_URL / DATABASE_URL (defaults: localhost:6379,
#                      postgresql://postgres@localhost:5432/bakame, created if missing)
#   make prod-env      print the environment endpoints.prod.yml is filled from
#   make health        health of a running stack (Rasa side + action server /healthz)
#   make report        programme report from the events table -> reports/ (CSV + PNG)
#   make test-integration   only the integration tests (real Redis + PostgreSQL)

.PHONY: run-prod prod-env health report test-integration

run-prod: train
	@prod_env="$$($(PY) -m infra.settings)" && eval "$$prod_env" && \
	  $(PY) -m infra.settings prepare && \
	  ENDPOINTS=endpoints.prod.yml CREDENTIALS=credentials.prod.yml scripts/run.sh

prod-env: setup
	@$(PY) -m infra.settings

health: setup
	@$(PY) scripts/healthcheck.py rasa; rasa=$$?; \
	 $(PY) scripts/healthcheck.py actions; actions=$$?; \
	 exit $$(( rasa || actions ))

report: setup
	$(PY) scripts/report.py --out reports

test-integration: train
	$(PY) -m pytest -q -m integration
