# Quick start: `make run` runs the pipeline end to end on the local engine; `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run test bench clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m pipelines.run $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q $(ARGS)

bench: $(VENV)/.installed
	$(PY) bench/local_pipeline.py
	$(PY) bench/preprocess_memory.py
	$(PY) bench/reliability.py
	$(PY) bench/invoke.py
	$(PY) bench/validate.py
	$(PY) bench/job_threads.py
	$(PY) bench/job_sandbox.py
	$(PY) bench/image_environments.py

clean:
	rm -rf $(VENV) .sagemaker-local
