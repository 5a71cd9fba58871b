# The programme dashboard (issue 17, docs/dashboard.md). Included by the Makefile.
#
#   make dashboard         serve it on DASHBOARD_PORT (8080) next to `make run-prod`: same
#                          databases (.env / environment), read-only role for learner data;
#                          refuses to start without DASHBOARD_SECRET_KEY
#   make dashboard-local   next to `make run`: the SQLite progress store, no events table
#   make dashboard-user USERNAME=tina ROLE=teacher [CLASSES="4821 7310"] [NAMES="P5-Blue P6"] [LOCAL=1]
#                          create or update an account; password from DASHBOARD_PASSWORD or asked
#                          twice (no default exists); a teacher's classes are created with those
#                          codes (or one new 4-digit code when CLASSES is empty)
#   make test-dashboard    the dashboard's tests, browser end-to-end included
.PHONY: dashboard dashboard-local dashboard-user test-dashboard

dashboard: setup
	@scripts/dashboard.sh serve

dashboard-local: setup
	@scripts/dashboard.sh serve --local

dashboard-user: setup
	@test -n "$(USERNAME)" -a -n "$(ROLE)" || { echo "usage: make dashboard-user USERNAME=name ROLE=admin|teacher|viewer [CLASSES=\"code ...\"] [NAMES=\"name ...\"] [LOCAL=1]"; exit 2; }
	@scripts/dashboard.sh user "$(USERNAME)" --role "$(ROLE)" $(if $(LOCAL),--local) \
	  $(foreach c,$(CLASSES),--class-code "$(c)") $(foreach n,$(NAMES),--class-name "$(n)") \
	  $(if $(and $(filter teacher,$(ROLE)),$(if $(CLASSES)$(NAMES),,x)),--class-name "$(USERNAME)'s class")

test-dashboard: train
	$(PY) -m pytest -q tests/test_dashboard.py tests/test_dashboard_browser.py
