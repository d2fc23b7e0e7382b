# Two commands set up a fresh machine: `make sweep` (the default job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: sweep test plan install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

sweep: $(STAMP)
	$(VENV)/bin/harness sweep matrix/edge.yaml

plan: $(STAMP)
	$(VENV)/bin/harness plan matrix/edge.yaml

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) results/cache results/*.duckdb
