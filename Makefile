# Two set-up commands: `make run` (the product, on SQLite with local demo keys) and
# `make test` (the whole suite). Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run venv test lint bench serve messages screenshots

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

# The demo keys come first (setup_demo makes them before anything checks for them, then
# migrates); its last lines are the admin account, in a box.
run: $(VENV)/.installed
	$(BIN)/python manage.py compile_translations
	$(BIN)/python manage.py setup_demo
	@echo "Serving on http://127.0.0.1:$(PORT)/ (log in at /accounts/login/)"
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# .venv with licserver installed and the catalog compiled, nothing else (the README's two
# nodes on one machine start from it).
venv: $(VENV)/.installed
	$(BIN)/python manage.py compile_translations

# axe-core for the accessibility test (tests/test_accessibility_browser.py), from the npm
# registry into a folder of its own; without npm the test says why it skipped.
AXE := .ci/node/node_modules/axe-core/axe.min.js
$(AXE):
	@if command -v npm >/dev/null; then \
	  npm install --prefix .ci/node --no-save --no-audit --no-fund --loglevel=error axe-core@4; \
	else echo "npm not found: the accessibility test will be skipped"; fi

test: $(VENV)/.installed-test $(AXE)
	$(BIN)/python manage.py compile_translations
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

# Production-style serving: one node (gunicorn master + workers) on BIND:PORT.
serve: $(VENV)/.installed
	$(BIN)/python manage.py compile_translations
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/gunicorn -c gunicorn.conf.py licserver.wsgi

# Every hot path's cost as a ratio (docs/performance.md); not part of `make test`.
# PostgreSQL rows need DATABASE_URL=postgres://...; BENCH_ARGS=--quick for a short run.
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Refresh locale/*/django.po from the code and templates (needs GNU gettext's xgettext),
# then translate the new msgstr entries by hand; the set-up compiles them with babel.
messages: $(VENV)/.installed
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete -i .venv -i bench -i tests -i var -i test-artifacts -i "*.egg-info"
	$(BIN)/python manage.py compile_translations

# Remake the README screenshots (docs/screenshots/*.png) with Debian's chromium, against
# a throwaway server with its own temporary data.
screenshots: $(VENV)/.installed-test
	$(BIN)/python scripts/screenshots.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
