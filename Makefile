# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
USERS ?= 2000
DAYS ?= 30
OUT ?= out

LOCK := requirements.lock
# pip-compile's options for the lock: every extra the tests use, build requirements too (so the
# package itself builds from locked setuptools), hashes, no machine-specific index paths.
LOCK_FLAGS := --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	--no-emit-index-url --no-emit-find-links --extra test --extra spark --extra browser --extra docs

.PHONY: dev demo test test-fast docs docs-serve browser-deps lock clean

# Installs exactly the pinned, hash-checked versions of $(LOCK); the package itself goes in without
# dependencies, built by the locked setuptools (no unpinned build environment).
$(BIN)/micromoments: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; exit 1; }
	touch $@

dev: $(BIN)/micromoments

# Generate demo data, ingest it, classify, analyse, and write the HTML report.
demo: dev
	$(BIN)/micromoments demo --users $(USERS) --days $(DAYS) --out $(OUT)

# What CI runs: every test, slow ones (Spark, browser, load) included.
test: dev browser-deps
	$(BIN)/pytest -q -p no:cacheprovider; status=$$?; [ $$status -eq 5 ] && exit 0 || exit $$status

test-fast: dev
	$(BIN)/pytest -q -m "not slow"

# The docs site into site/, warnings as errors (tests/test_docs.py builds it the same way in `make test`).
docs: dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser),
# and redis-server for the Redis Streams bus tests (they skip without it).
browser-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "install Debian's $$missing (sudo apt-get install $$missing) for the browser and Redis tests"; fi; fi

# Regenerate $(LOCK) after adding or changing a dependency in pyproject.toml, then commit both.
# Keeps every other pin; `make lock UPGRADE=1` moves all pins to the newest allowed versions.
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet pip-tools==7.7.0
	.venv-lock/bin/pip-compile --quiet $(if $(UPGRADE),--upgrade) $(LOCK_FLAGS) -o $(LOCK) pyproject.toml

clean:
	rm -rf $(VENV) .venv-lock $(OUT) site *.duckdb .pytest_cache
