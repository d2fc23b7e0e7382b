# Two commands set up a fresh machine: `make sweep` (the default job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

MODELS := matrix/models/.made

.PHONY: sweep test plan install models clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[full,test]'
	touch $(STAMP)

install: $(STAMP)

# The user-brought models edge.yaml measures (a transformers folder, two ONNX files), made
# here from configs and seeded weights: nothing is downloaded.
$(MODELS): $(STAMP) examples/make_models.py
	$(PY) examples/make_models.py matrix/models
	touch $(MODELS)

models: $(MODELS)

sweep: $(STAMP) $(MODELS)
	$(VENV)/bin/harness sweep matrix/edge.yaml

plan: $(STAMP) $(MODELS)
	$(VENV)/bin/harness plan matrix/edge.yaml

test: $(STAMP) $(MODELS)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) results/cache results/*.duckdb matrix/models
