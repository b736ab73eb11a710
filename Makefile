# OpsHero: `make run` starts everything, `make test` proves it works.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The suite runs on this many pytest-xdist workers (each with its own test database and Redis
# databases, see tests/settings.py); TEST_WORKERS=1 runs it in one process.
TEST_WORKERS ?= 2
HOST ?= 127.0.0.1
export PORT HOST

.PHONY: run test setup setup-dev assets migrate seed lint bench gateway-wheel clean

## Set-up steps (each re-runs only when its inputs change) --------------------------------------
$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "OpsHero needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Front-end files come from the npm registry (htmx, Tabler) and PyPI (plotly.js inside the
# plotly package); nothing is fetched from a CDN at run time and nothing vendored is in git.
static/vendor/.built: node_modules/.installed $(VENV)/.installed
	rm -rf static/vendor
	mkdir -p static/vendor/htmx static/vendor/tabler static/vendor/tabler-icons/fonts static/vendor/plotly
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
	cp node_modules/@tabler/core/dist/css/tabler.min.css node_modules/@tabler/core/dist/css/tabler.min.css.map static/vendor/tabler/
	cp node_modules/@tabler/core/dist/js/tabler.min.js node_modules/@tabler/core/dist/js/tabler.min.js.map static/vendor/tabler/
	cp node_modules/@tabler/icons-webfont/dist/tabler-icons.min.css static/vendor/tabler-icons/
	cp node_modules/@tabler/icons-webfont/dist/fonts/tabler-icons.{woff2,woff,ttf} static/vendor/tabler-icons/fonts/
	$(PY) -c 'import pathlib, shutil, plotly; shutil.copy(pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js", "static/vendor/plotly/")'
	touch $@

setup: $(VENV)/.installed static/vendor/.built
setup-dev: $(VENV)/.installed-dev static/vendor/.built
assets: static/vendor/.built

migrate: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0

seed: migrate
	$(PY) manage.py seed_demo

## The two commands ---------------------------------------------------------------------------
run: seed
	@echo ""
	@echo "OpsHero is starting at http://$(HOST):$(PORT)/  (web, validation worker, worker, beat; Ctrl-C stops all)"
	@echo "Database: $${DATABASE_URL:-SQLite under var/}   Broker: $${REDIS_URL:-$${CELERY_BROKER_URL:-filesystem under var/celery/}}"
	@echo ""
	WEB_PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile -p $(PORT)

test: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup-dev
	@shopt -s nullglob; scripts=(benchmarks/bench_*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "No benchmarks yet."; fi; \
	for script in "$${scripts[@]}"; do echo "== $$script"; $(PY) $$script || exit 1; done

# The edge agent as its own wheel (gateway/ and protocol/ only; docs/gateway.md). The in-tree
# backend uses only the standard library, so this needs neither the venv nor a package index.
gateway-wheel:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "building the gateway wheel needs Python >= 3.11")'
	$(PYTHON) -m pip wheel --no-deps --no-cache-dir -w dist packaging/gateway
	@ls -1 dist/opshero_gateway-*.whl

clean:
	rm -rf dist $(VENV) node_modules static/vendor var .pytest_cache .ruff_cache
