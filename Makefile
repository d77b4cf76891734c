# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
USERS ?= 2000
DAYS ?= 30
OUT ?= out

.PHONY: dev demo test test-fast browser-deps clean

$(BIN)/micromoments: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,spark,browser]"
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

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser),
# and redis-server for the Redis Streams bus tests (they skip without it).
browser-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "install Debian's $$missing (sudo apt-get install $$missing) for the browser and Redis tests"; fi; fi

clean:
	rm -rf $(VENV) $(OUT) *.duckdb .pytest_cache
