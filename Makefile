# The two commands a newcomer needs: `make up` (install, start and serve) and `make test`.
PYTHON ?= python3
VENV_PY := .venv/bin/python

.PHONY: up down status test lint clean invoke samples dashboard

up:        ## install what is missing, start PostgreSQL, Redis, FerretDB and the AWS emulator
	$(PYTHON) infra/devstack.py up

down:      ## stop everything `make up` started (by PID)
	$(PYTHON) infra/devstack.py down

status:    ## show which services run and where
	$(PYTHON) infra/devstack.py status

test:      ## start what the tests need, run the whole suite, stop what it started
	$(PYTHON) infra/devstack.py test $(PYTEST_ARGS)

invoke:    ## run one function's handler locally: make invoke FN=feed EVENT=events/feed-home-feed.json
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json"; exit 2; }
	$(VENV_PY) infra/invoke.py $(FN) $(EVENT)

samples:   ## create the users and the post the sample events in events/ name (again: restore them)
	$(VENV_PY) infra/samples.py

TRAFFIC_SECONDS ?= 240
DASHBOARD_MINUTES ?= 5
dashboard: ## traffic through the local stack for TRAFFIC_SECONDS, then the main panels -> docs/img
	$(PYTHON) infra/devstack.py up --quiet
	$(VENV_PY) -m infra.monitoring.traffic --seconds $(TRAFFIC_SECONDS)
	$(VENV_PY) -m infra.monitoring.render_dashboard --minutes $(DASHBOARD_MINUTES)

lint:      ## ruff over the whole tree
	$(VENV_PY) -m ruff check .

clean:     ## stop everything and delete all local state (databases, logs, keys)
	$(PYTHON) infra/devstack.py clean

.PHONY: bench bench-quick
bench:     ## full benchmarks (~100k users, ~4M follows; own databases) -> bench/results, docs/img
	$(PYTHON) infra/devstack.py up --no-apps --quiet
	$(VENV_PY) -m bench.run --mode full $(BENCH_ARGS)

bench-quick: ## the benchmarks on a tiny graph: checks they run (make test does this too)
	$(PYTHON) infra/devstack.py up --no-apps --quiet
	$(VENV_PY) -m bench.run --mode quick $(BENCH_ARGS)
