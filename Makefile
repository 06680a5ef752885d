# Two commands matter: `make run` starts the whole stack, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test protos bench clean

run: $(VENV)/.installed
	$(PY) -m services.launcher

test: $(VENV)/.installed
	$(PY) -m pytest

# Regenerate protos/**/*_pb2*.py{,i}; commit the result.
protos: $(VENV)/.installed
	PYTHON=$(PY) scripts/gen_protos.sh

bench: $(VENV)/.installed
	$(PY) bench/fanout.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var
