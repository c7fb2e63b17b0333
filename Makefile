# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/searchsite
REDIS_TEST_URL ?= redis://127.0.0.1:6379/14
STATIC := staticfiles/staticfiles.json

.PHONY: help install browser migrate demo run worker test test-embedded test-services test-scifact test-faults test-hosts lint screenshot evaluate bench-deps bench-ingest bench-search bench-abuse bench-replica bench-pgvector clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

install: $(STAMP) $(STATIC)  ## create .venv, install everything (torch pinned first), collect static files

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# Pinned and first: an unpinned torch pulls gigabytes of CUDA packages.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# WhiteNoise serves these from every web process (hashed names, gzip and brotli);
# collected again when a static file or an installed package changes.
$(STATIC): $(STAMP) $(shell find static -type f)
	$(PY) manage.py collectstatic --noinput -v 0

browser:  ## install Debian's chromium and axe-core (npm) for the browser tests, if missing
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@test -f node_modules/axe-core/axe.min.js || npm install --no-save --no-package-lock --silent axe-core@4.14.1

migrate: install  ## create or update the database (and build the encoder's ONNX files)
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py prepare_encoder

demo: migrate  ## load the demo collection (Web Applications Stack Exchange, CC BY-SA)
	$(PY) manage.py import_content faq/demo/webapps.jsonl --collection webapps
	$(PY) manage.py ensure_admin

run: demo  ## install, migrate, load the demo, start the site and a worker
	@trap 'kill 0' EXIT; \
	$(VENV)/bin/celery -A searchsite worker --beat --concurrency 1 --loglevel warning & \
	echo; echo "  Search page: http://$(HOST):$(PORT)/   admin: http://$(HOST):$(PORT)/admin/   API: http://$(HOST):$(PORT)/api/docs"; echo; \
	DEBUG=true EMBEDDINGS_PRELOAD=1 $(PY) manage.py runserver --noreload $(HOST):$(PORT)

worker: install  ## run a Celery worker (with the periodic reconcile) in the foreground
	$(VENV)/bin/celery -A searchsite worker --beat --concurrency 1 --loglevel info

# The passes side by side, each with its own database, broker and VAR_DIR (the
# encoder's files built once, under a lock, in one MODELS_DIR): the fault and host
# suites wait on outages and restarts for minutes, cores the other passes use.
# Each pass's output is printed whole when it ends.
TEST_ENV := MODELS_DIR=$(CURDIR)/var/models
SERVICES_ENV := $(TEST_ENV) DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) DB_CONN_MAX_AGE=0
SLOW_SUITES := tests/test_faults.py tests/test_hosts.py

test: install browser  ## the whole suite: on PostgreSQL + Redis, and on the embedded default
	$(MAKE) --no-print-directory -j5 --output-sync=target test-services test-scifact test-faults test-hosts test-embedded

test-services: install  ## the suite against PostgreSQL and Redis on this machine (but the fault and host suites, and SciFact)
	$(SERVICES_ENV) VAR_DIR=$(CURDIR)/var/test-services \
		$(PY) -m pytest $(addprefix --ignore=,$(SLOW_SUITES)) -m "not scifact" $(PYTEST_ARGS)

# The full SciFact evaluation (minutes of embedding) beside the services pass, on a
# database and a Redis database of its own.
test-scifact: install  ## the SciFact evaluation against PostgreSQL and Redis (its published figures)
	$(TEST_ENV) DATABASE_URL=$(PG_URL)_scifact REDIS_URL=redis://127.0.0.1:6379/13 DB_CONN_MAX_AGE=0 \
		VAR_DIR=$(CURDIR)/var/test-scifact $(PY) -m pytest -p no:cacheprovider -m scifact $(PYTEST_ARGS)

# The fault suite and the many-host suite each wait out outages and restarts for
# minutes: two processes, beside each other.
test-faults: install  ## the fault suite: PostgreSQL, Redis, gunicorn and Celery of its own
	$(SERVICES_ENV) VAR_DIR=$(CURDIR)/var/test-faults \
		$(PY) -m pytest -p no:cacheprovider tests/test_faults.py $(PYTEST_ARGS)

test-hosts: install  ## the many-host suite (root: network namespaces), services of its own
	$(SERVICES_ENV) VAR_DIR=$(CURDIR)/var/test-hosts \
		$(PY) -m pytest -p no:cacheprovider tests/test_hosts.py $(PYTEST_ARGS)

test-embedded: install  ## the tests that use the database again, on SQLite and the filesystem broker
	env -u DATABASE_URL -u REDIS_URL $(TEST_ENV) VAR_DIR=$(CURDIR)/var/test-embedded TEST_PASS=embedded \
		$(PY) -m pytest -p no:cacheprovider -m "not scifact and not services" $(PYTEST_ARGS)

lint: install  ## ruff and mypy
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy searchsite faq embeddings

evaluate: migrate  ## dense retrieval quality on SciFact (a few minutes)
	$(PY) manage.py evaluate ../shared/data/scifact --mode dense --json

bench-deps: install  ## install the benchmarks' peers and profilers (txtai, py-spy, pyinstrument)
	$(VENV)/bin/pip install --quiet -e ".[bench]"

bench-ingest: bench-deps  ## SciFact from import_content to searchable, against txtai
	$(PY) -m bench.ingest

bench-abuse: install  ## a search prober's p99 under anonymous abuse, against the prober alone
	$(PY) -m bench.abuse $(BENCH_ARGS)

bench-replica: install  ## a web host's replica lag at 1 and 10 writes a second (root: network namespaces)
	$(PY) -m bench.replica $(BENCH_ARGS)

bench-pgvector: install  ## SciFact and StackFAQ with the dense leg in pgvector, beside FAISS
	$(PY) -m bench.pgvector $(BENCH_ARGS)

bench-search: install  ## HTTP search under gunicorn at 100K chunks, with wrk (installed if missing)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(PY) -m bench.search $(BENCH_ARGS)

clean:  ## remove var/ (database, broker, indexes)
	rm -rf var
