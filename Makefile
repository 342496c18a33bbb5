# Two commands: `make demo` and `make test`. Both build what they need from nothing, and reuse it after.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LS_VENV := .venv-labelstudio
LLAMA_VENV := .venv-llamaserver
BIN := $(VENV)/bin
export VALUECORPUS_HOME ?= $(CURDIR)/corpus-home
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
PIP_QUIET := --quiet --disable-pip-version-check --no-warn-script-location

.PHONY: demo test setup setup-test lint clean bench help

help:
	@echo "make demo   - set up and run the demo (import, generate, publish, query)"
	@echo "make test   - set up everything the suite needs and run it"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks (writes bench/results/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true

# The toolkit itself, the embedded local model (llama.cpp compiles from source on first install), Airflow (the
# DAG tests run real `airflow dags test`) and the test tools: Dask, moto's S3 server, Playwright, and
# tests/support (the fake OpenAI-compatible server that tests and benchmarks share; never in the wheel).
$(VENV)/.installed: pyproject.toml setup.py tests/support/pyproject.toml | $(BIN)/python
	@echo "installing valuecorpus into $(VENV) (first time: several minutes, llama.cpp compiles)"
	set -o pipefail; $(BIN)/pip install $(PIP_QUIET) -e '.[local,test,airflow]' -e tests/support 2>&1 | { grep -v "^WARNING: Location" || true; }
	touch $@

# Label Studio server in its own venv (it cannot share ours).
$(LS_VENV)/.installed: requirements/labelstudio.txt
	[ -x $(LS_VENV)/bin/python ] || $(PYTHON) -m venv $(LS_VENV)
	set -o pipefail; $(LS_VENV)/bin/pip install $(PIP_QUIET) -r requirements/labelstudio.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	touch $@

# llama.cpp's OpenAI-compatible server in its own venv (for the end-to-end engine test); reuses pip's wheel cache.
$(LLAMA_VENV)/.installed: requirements/llamaserver.txt
	[ -x $(LLAMA_VENV)/bin/python ] || $(PYTHON) -m venv $(LLAMA_VENV)
	set -o pipefail; $(LLAMA_VENV)/bin/pip install $(PIP_QUIET) -r requirements/llamaserver.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	touch $@

# Headless Chromium for the browser tests, from Debian's packages (Playwright drives the system browser).
/usr/bin/chromium:
	apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null

setup: $(VENV)/.installed
setup-test: setup $(LS_VENV)/.installed $(LLAMA_VENV)/.installed /usr/bin/chromium

demo: setup
	@bash scripts/demo.sh

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

bench: setup-test
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(LS_VENV) $(LLAMA_VENV) build dist *.egg-info
