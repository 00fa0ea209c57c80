# Two commands set up everything on a fresh machine:
#   make run   - create .venv if needed, install the runtime requirements, start on http://127.0.0.1:7860
#   make test  - create/update .venv with the dev requirements, install system tools, run the whole suite
# Installs are skipped when the requirement files are unchanged (a stamp holds their hash).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
RUN_HASH := $(shell cat requirements.txt | sha256sum | cut -c1-16)
DEV_HASH := $(shell cat requirements.txt requirements-dev.txt requirements-cuda.txt | sha256sum | cut -c1-16)
RUN_STAMP := $(VENV)/.stamp-run-$(RUN_HASH)
DEV_STAMP := $(VENV)/.stamp-dev-$(DEV_HASH)
PYTEST_ARGS ?=
# Test files run on two workers (each file whole on one, so its shared server and browser stay
# together); WORKERS=0 runs everything in this process.
WORKERS ?= 2

.PHONY: run test system-deps bench clean

run: $(RUN_STAMP)
	$(PY) -m voicebox

test: system-deps $(DEV_STAMP)
	$(PY) -m pytest $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile) $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(PY) bench/store_speed.py
	$(PY) bench/asr_speed.py
	$(PY) bench/tts_speed.py --quick

system-deps:
	@bash scripts/system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	rm -f $(VENV)/.stamp-run-*
	touch $@

$(DEV_STAMP): | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.stamp-dev-* $(VENV)/.stamp-run-*
	touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
