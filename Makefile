# Two commands for a fresh clone: `make demo` and `make test`; both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo simulate test check lint bench bench-service bench-web screenshot clean packages

# pytest-xdist workers: the live replays mostly wait on the clock, so 3 fit on 2 cores.
TEST_WORKERS ?= 3
CHECK_WORKERS ?= 2

# Debian packages (binary:package) of the real services the demo and the tests run on loopback.
PACKAGES := mosquitto:mosquitto influxd:influxdb chromium:chromium

$(BIN)/pvopt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[sim,dev]"
	@touch $@

demo: $(BIN)/pvopt packages  # `make demo TIC=1`: the meter speaks TIC, read by `pvopt tic`
	$(BIN)/pvopt demo $(if $(TIC),--tic)

simulate: $(BIN)/pvopt
	@mkdir -p out
	$(BIN)/pvopt simulate broken_clouds --config house --plot out/demo.png

lint: $(BIN)/pvopt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Everything CI runs, live replays included (see README for how long).
test: lint packages
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# The developer's loop: no live replays, no whole-day simulations, no fresh venv.
check: lint packages
	$(BIN)/python -m pytest -n $(CHECK_WORKERS) --dist worksteal -m "not slow and not live"

bench: $(BIN)/pvopt
	$(BIN)/pvopt bench

bench-service: $(BIN)/pvopt packages
	$(BIN)/pvopt bench-service

bench-web: $(BIN)/pvopt packages
	$(BIN)/python bench/web_load.py

# the README's phone screenshot, taken by the browser test
screenshot: $(BIN)/pvopt packages
	PVOPT_SCREENSHOT=1 $(BIN)/python -m pytest tests/test_web_browser.py -k screenshot -q

packages:
	@missing=""; for bp in $(PACKAGES); do b=$${bp%%:*}; p=$${bp##*:}; \
	  command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || [ -x /usr/bin/$$b ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- run: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
