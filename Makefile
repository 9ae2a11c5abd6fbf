# Two commands for a fresh clone: `make demo` and `make test`; both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo simulate test lint bench bench-service clean packages

# Debian packages (binary:package) of the real services the demo and the tests run on loopback.
PACKAGES := mosquitto:mosquitto influxd:influxdb

$(BIN)/pvopt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[sim,dev]"
	@touch $@

demo: $(BIN)/pvopt packages  # `make demo TIC=1`: the meter speaks TIC, read by `pvopt tic`
	$(BIN)/pvopt demo $(if $(TIC),--tic)

simulate: $(BIN)/pvopt
	@mkdir -p out
	$(BIN)/pvopt simulate examples/traces/broken_clouds.csv.gz --config examples/house.yml --plot out/demo.png

test: $(BIN)/pvopt packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: $(BIN)/pvopt
	$(BIN)/pvopt bench

bench-service: $(BIN)/pvopt packages
	$(BIN)/pvopt bench-service

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
