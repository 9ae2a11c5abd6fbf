# Two commands for a fresh clone: `make demo` and `make test`; both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/pvopt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

demo: $(BIN)/pvopt
	@mkdir -p out
	$(BIN)/pvopt simulate examples/traces/broken_clouds.csv.gz --config examples/house.yml --plot out/demo.png

test: $(BIN)/pvopt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: $(BIN)/pvopt
	$(BIN)/pvopt bench

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
