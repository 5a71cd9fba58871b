# Production stack (issue 5): Redis tracker + lock store, PostgreSQL event broker.
# Included by the Makefile (-include mk/*.mk). See README, "Production".
#
#   make run-prod      action server (loopback only) + Rasa with endpoints.prod.yml /
#                      credentials.prod.yml, stores from REDIS_URL / DATABASE_URL (defaults:
#                      localhost:6379, postgresql://postgres@localhost:5432/bakame, created if
#                      missing); refuses to start without TWILIO_AUTH_TOKEN, SENDER_ID_SECRET,
#                      RASA_AUTH_TOKEN (environment or .env)
#   make prod-env      print the environment endpoints.prod.yml is filled from (passwords masked)
#   make health        health of a running stack (Rasa side + action server /healthz)
#   make report        programme report from the events table -> reports/ (CSV + PNG)
#   make test-integration   only the integration tests (real Redis + PostgreSQL)
#   make test-scale    only the scale-out test: 3 Rasa processes behind nginx, one killed mid-load
#                      (about 5-8 min; `make test` runs it too). docs/scaling.md

.PHONY: run-prod prod-env health report test-integration test-scale

# Checks the secrets before training, so a missing one is said at once.
run-prod: setup
	@scripts/run.sh prod

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

test-scale: train
	$(PY) -m pytest -q -m scale

# Learner data (issue 11, law N° 058/2021): access, erasure, retention. See README, "Production".
#   make learner-export PHONE=+2507...   (or SENDER=<conversation id>) [OUT=file] -> exports/*.json (0600)
#   make learner-erase  PHONE=+2507...   every store; prints what it removed per store
#   make events-retention [DAYS=365] [MODE=strip|delete] [DRY_RUN=1]   learner text out of old events
# PHONE and SENDER reach the command through the environment (make exports command-line
# variables), never on its command line: no phone number in `ps` or in make's echo.
.PHONY: learner-export learner-erase events-retention

learner-export: setup
	@$(PY) -m infra.learner_data export $(if $(OUT),--out "$(OUT)")

learner-erase: setup
	@$(PY) -m infra.learner_data erase

events-retention: setup
	@$(PY) -m infra.retention $(if $(DAYS),--days "$(DAYS)") $(if $(MODE),--mode "$(MODE)") $(if $(DRY_RUN),--dry-run)

# Re-seal every stored phone number under the first key of NUMBER_KEYS (docs/outreach.md, key rotation).
.PHONY: numbers-reencrypt
numbers-reencrypt: setup
	@$(PY) -m infra.number_store reencrypt
