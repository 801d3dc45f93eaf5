# Quick start: `make run` runs the pipeline end to end on the local engine; `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run test test-fast docs studio bench clean

# uv installs the package and its test tools in about a minute (pip takes about five); pip is the fallback
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	@echo "Installing the package into $(VENV) with uv (pip if uv cannot be installed; uv's list: $(VENV)/install.log)..."
	@# a current pip in the virtualenv: jobs' pre-execution commands run it, and it trusts the system's certificates
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# uv lists every package it installs (~185 lines): kept in a log, its one-line summary shown (all on failure);
	@# bytecode compiled at install, as pip does: every command imports MLflow or the SDK twice as fast, even
	@# where PYTHONDONTWRITEBYTECODE keeps Python from writing it
	@if $(PY) -m pip install --quiet --disable-pip-version-check uv; then \
	    if $(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -e '.[test]' >$(VENV)/install.log 2>&1; then \
	        grep -E '^(Installed|Audited) ' $(VENV)/install.log || tail -n 1 $(VENV)/install.log; \
	    else \
	        cat $(VENV)/install.log; exit 1; \
	    fi; \
	else \
	    $(PY) -m pip install --disable-pip-version-check --progress-bar on -e '.[test]'; \
	fi
	touch $@

run: $(VENV)/.installed
	$(PY) -m pipelines.run $(ARGS)

# the local studio over the store `make run` uses, in the browser (STUDIO_ARGS: e.g. --no-browser --port 0)
studio: $(VENV)/.installed
	$(PY) -m pipelines.studio --store .sagemaker-local $(STUDIO_ARGS)

# the suite runs on every core (pytest-xdist); a module's tests stay on one worker, as its fixtures are shared
JOBS ?= auto
test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(JOBS) --dist loadscope $(ARGS)

# a smoke test in seconds: configuration, expressions, the registry, the command line's parsers and tables,
# the import rules, the CSV scoring rules, the archive extractor, the suite's scheduling; no job, no server,
# no environment build (`make test` runs everything)
FAST_TESTS := tests/test_imports.py tests/pipelines/cli/test_help.py tests/pipelines/cli/test_describe.py tests/pipelines/test_config.py \
	tests/pipelines/test_overrides.py tests/pipelines/test_errors.py tests/pipelines/local/test_expressions.py \
	tests/pipelines/test_progress.py tests/pipelines/test_executions_table.py tests/pipelines/local/test_registry.py \
	tests/inference/test_xgboost_csv.py tests/processing/test_archives.py tests/test_longest_first.py
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q $(FAST_TESTS) $(ARGS)

# the documentation site (docs/, mkdocs.yml) into site/, a warning failing the build
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.installed
	$(PY) bench/local_pipeline.py
	$(PY) bench/preprocess_memory.py
	$(PY) bench/reliability.py
	$(PY) bench/hostile_store.py
	$(PY) bench/invoke.py
	$(PY) bench/validate.py
	$(PY) bench/job_threads.py
	$(PY) bench/job_sandbox.py
	$(PY) bench/image_environments.py

clean:
	rm -rf $(VENV) .sagemaker-local site
