# Two commands for a fresh clone: `make demo` and `make test`; both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo simulate test lint bench bench-service clean packages ha-venv

# Debian packages (binary:package) of the real services the demo and the tests run on loopback.
PACKAGES := mosquitto:mosquitto influxd:influxdb

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

demo: $(BIN)/pvopt packages
	$(BIN)/pvopt demo

simulate: $(BIN)/pvopt
	@mkdir -p out
	$(BIN)/pvopt simulate examples/traces/broken_clouds.csv.gz --config examples/house.yml --plot out/demo.png

# The real-Home-Assistant test mostly waits (HA makes statistics every 5 minutes), so it runs,
# with the build of its venv, beside the other tests; its output follows theirs.
test: $(BIN)/pvopt packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p out
	@( $(MAKE) --no-print-directory ha-venv && PVOPT_HASS=$(abspath $(HA_VENV))/bin/hass \
	  $(BIN)/python -m pytest -m homeassistant ) > out/ha-test.log 2>&1 & ha=$$!; \
	$(BIN)/python -m pytest -m "not homeassistant"; core=$$?; \
	wait $$ha; ha_rc=$$?; echo "--- Home Assistant (out/ha-test.log)"; cat out/ha-test.log; \
	exit $$(( core || ha_rc ))

ha-venv: $(HA_VENV)/bin/hass

$(HA_VENV)/bin/hass: pyproject.toml Makefile
	$(PYTHON) -m venv $(HA_VENV)
	$(HA_VENV)/bin/pip install --quiet "$(HA_PIN)" $(HA_REQS)
	@touch $@

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
	rm -rf $(VENV) $(HA_VENV) out .pytest_cache .ruff_cache .hypothesis
