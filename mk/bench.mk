# Benchmarks (issue 6): turn latency and throughput under many concurrent learners.
# Included by the Makefile (-include mk/*.mk). Method, figures and findings: docs/benchmarks.md.
#
#   make bench           the whole benchmark (about 11 min on 2 cores, training included):
#                        production stack (Redis, PostgreSQL) + fake LLM, signed Twilio and REST
#                        load, long session, training; results in bench/results/<run>.json and
#                        the tables in docs/benchmarks.md
#   make bench-quick     small loads, no training (a few minutes; checks the harness)
#   make bench-ratio     Rasa CPU per Twilio turn / per /model/parse on one Rasa process, 3 rounds
#                        (~3 min; the issue-16 ratio, repeatable on a busy machine; BENCH_RATIO_ARGS
#                        e.g. '--profile --env RASA_SPEEDUPS=schema,events,pool,window')
#
# Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres; the database
# bakame_bench is created) -- BENCH_REDIS_URL / BENCH_DATABASE_URL to use others.
# Knobs (environment): BENCH_RASA_WORKERS=2, BENCH_ACTION_WORKERS, BENCH_LLM_DELAY=1.5,
# BENCH_SKIP_TRAIN=1, BENCH_PROFILE=1 (py-spy, if installed), BENCH_OVERLAY=dir, BENCH_ENV='K=V ...',
# BENCH_ONLY=nlu,load,llm,long,train, BENCH_LABEL, BENCH_NO_DOCS=1, BENCH_DOC_SECTION=name.

.PHONY: bench bench-quick bench-ratio

bench: train
	$(PY) -m bench.run

bench-quick: train
	BENCH_QUICK=1 BENCH_NO_DOCS=1 $(PY) -m bench.run

bench-ratio: train
	$(PY) -m bench.ratio $(BENCH_RATIO_ARGS)
