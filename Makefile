# The two commands of the README: `make run` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
BROWSER := $(VENV)/.browser-stamp
NODE    := tests/node/node_modules/.installed-stamp
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck unit e2e-postgresql bench clean

# (Re)install the project with its dev extras, at the pinned versions of constraints.txt, when
# either changed.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The browser tests drive Debian's Chromium (playwright cannot download its own here).
$(BROWSER):
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	@mkdir -p $(VENV) && touch $(BROWSER)

# openid-client, the certified relying party of tests/e2e/test_openid_client.py, at the versions
# of tests/node/package-lock.json (reinstalled when it changes). Needs Node.js 20+ with npm.
$(NODE): tests/node/package.json tests/node/package-lock.json
	@command -v npm >/dev/null && node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' \
		|| { echo "make test needs Node.js 20+ and npm (tests/node)" >&2; exit 1; }
	npm ci --prefix tests/node --no-audit --no-fund
	@touch $(NODE)

run: $(STAMP)
	$(VENV)/bin/tessera serve --demo --with-integration 8001

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check src

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Everything: lint, types, unit, end-to-end (SQLite), browser, PostgreSQL/Redis cluster tests,
# then the end-to-end modules that reach the store's own writes again on PostgreSQL (the same
# tests, parametrised by TESSERA_TEST_DB; `every_database`, listed in tests/e2e/conftest.py).
# Two workers, a test module each at a time (its server and browser stay in one worker): every
# server takes a free port, every database and Redis prefix is the test's own. The sources are
# compiled first: every test starts servers and CLI processes, which would otherwise compile
# every module again where PYTHONDONTWRITEBYTECODE is set.
PARALLEL := -n 2 --dist loadfile
test: $(STAMP) $(BROWSER) $(NODE) lint typecheck
	$(PY) -m compileall -q src tests
	$(VENV)/bin/pytest $(PARALLEL) --durations=25
	$(MAKE) --no-print-directory e2e-postgresql

e2e-postgresql: $(STAMP) $(NODE)
	TESSERA_TEST_DB=postgresql $(VENV)/bin/pytest tests/e2e -q -m every_database $(PARALLEL)

# The fast tests, without PostgreSQL or Redis (`make test` runs the `postgresql` ones too).
unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit -q -m "not postgresql"

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache tests/node/node_modules
