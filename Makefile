# Two commands for a fresh clone: `make demo` and `make test`; both set up .venv themselves.
PYTHON ?= python3
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo simulate test check lint bench bench-service bench-web screenshot clean packages ha-venv

# pytest-xdist workers: the live replays mostly wait on the clock, so 3 fit on 2 cores.
TEST_WORKERS ?= 3
CHECK_WORKERS ?= 2

# Debian packages (binary:package) of the real services the demo and the tests run on loopback.
PACKAGES := mosquitto:mosquitto influxd:influxdb chromium:chromium

# Home Assistant Core for tests/test_homeassistant_live.py, in a venv of its own: its MQTT
# integration pins paho-mqtt 1.x, pvopt needs 2.x. The version is the `ha` extra's pin. The test
# starts it with --skip-pip, so the requirements of the integrations it loads (mqtt, api, energy,
# recorder, frontend and the defaults) are installed here (numpy: the frontend's service list
# needs `stream`); josepy<2 keeps hass-nabucasa importable.
HA_VENV ?= .venv-ha
HA_PIN := $(shell sed -n 's/^ha = \["\(.*\)"\]/\1/p' pyproject.toml)
HA_REQS := paho-mqtt==1.6.1 SQLAlchemy==2.0.27 fnv-hash-fast==0.5.0 psutil-home-assistant==0.0.1 \
	janus==1.0.0 aiohttp_cors==0.7.0 aiohttp-fast-url-dispatcher==0.3.0 aiohttp-zlib-ng==0.3.1 \
	Pillow==10.2.0 home-assistant-frontend==20240307.0 ifaddr==0.2.0 securetar==2024.2.1 \
	numpy==1.26.0 "josepy<2"

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
	$(BIN)/vulture  # dead code: settings in pyproject.toml, reasons in .vulture_whitelist.py

# Everything CI runs, live replays and the real Home Assistant included (docs/layout.md says how
# long). The Home Assistant test mostly waits (HA makes statistics every 5 minutes), so it runs,
# with the build of its venv, beside the others; its log is printed after theirs, then their
# summary line again.
test: lint packages
	@mkdir -p out
	@( $(MAKE) --no-print-directory ha-venv && PVOPT_HASS=$(abspath $(HA_VENV))/bin/hass \
	  $(BIN)/python -m pytest -m homeassistant ) > out/ha-test.log 2>&1 & ha=$$!; \
	set -o pipefail; $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal \
	  -m "not homeassistant" 2>&1 | tee out/core-test.log; core=$$?; \
	wait $$ha; ha_rc=$$?; echo "--- Home Assistant (out/ha-test.log)"; cat out/ha-test.log; \
	echo "--- all but Home Assistant:"; tail -n 1 out/core-test.log; \
	exit $$(( core || ha_rc ))

# The developer's loop: no live replays, no whole-day simulations, no fresh venv, no HA.
check: lint packages
	$(BIN)/python -m pytest -n $(CHECK_WORKERS) --dist worksteal \
	  -m "not slow and not live and not homeassistant"

ha-venv: $(HA_VENV)/bin/hass

$(HA_VENV)/bin/hass: pyproject.toml Makefile
	$(PYTHON) -m venv $(HA_VENV)
	$(HA_VENV)/bin/pip install --quiet "$(HA_PIN)" $(HA_REQS)
	@touch $@

bench: $(BIN)/pvopt
	$(BIN)/pvopt bench

bench-service: $(BIN)/pvopt packages
	$(BIN)/pvopt bench-service

bench-web: $(BIN)/pvopt packages
	$(BIN)/python bench/web_load.py

# the phone screenshot of docs/web.md, taken by the browser test
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
	rm -rf $(VENV) $(HA_VENV) out .pytest_cache .ruff_cache .hypothesis
