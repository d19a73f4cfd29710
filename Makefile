# cliplab — the two commands of the quick start are `make replicate` and `make test`; both set up .venv first.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cliplab-installed
UV_VERSION := 0.13.9

.PHONY: setup replicate smoke test test-fast bench lab data lock clean-state

setup: $(STAMP)

# uv installs the normal PyPI wheels pinned in requirements.lock (it does not read pip's find-links, so a
# machine-local CPU-only torch wheel cannot sneak in and mismatch torchvision).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name cliplab --display-name "cliplab (.venv)" >/dev/null
	@mkdir -p $(VENV)/share/jupyter/lab/settings && cp lib/cliplab/core/lab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $(STAMP)

# data/ is versioned by data.dvc: pull it from the DVC remote, or rebuild the deterministic sample. Done once per
# data.dvc (the stamp is newer than data.dvc), so a rerun with nothing changed costs no pull and no rebuild.
DATA_STAMP := .cliplab/data.stamp
data: setup
	@if [ ! -d data ] || [ ! $(DATA_STAMP) -nt data.dvc ]; then \
	  { $(BIN)/dvc pull -q data.dvc 2>/dev/null || $(BIN)/cliplab sample-data data; } && mkdir -p .cliplab && touch $(DATA_STAMP); \
	fi

replicate: setup data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cliplab replicate

smoke: setup data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cliplab replicate --smoke

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -p no:cacheprovider

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

# `make bench ARGS=--quick` skips the default-scale end-to-end timings (the papers, the first run: about an hour).
bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run.py $(ARGS)

# JupyterLab rooted at the repository (notebooks/, replications/ and the hidden .cliplab/ scratch outputs can all be
# browsed; notebooks/ opens first), on $(LAB_IP):$(PORT) only; a taken port is an error, not a silent fallback.
# The token is the environment variable JUPYTER_TOKEN when set (kept off the command line), else a fresh one. The
# settings overrides are copied on every start, so an edit of lab_overrides.json applies without a reinstall.
# E.g. `make lab PORT=8890 LAB_ARGS=--no-browser`.
PORT ?= 8888
LAB_IP ?= 127.0.0.1
LAB_ARGS ?=
lab: setup
	@mkdir -p $(VENV)/share/jupyter/lab/settings && cp lib/cliplab/core/lab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
	  --ServerApp.ip=$(LAB_IP) --ServerApp.port=$(PORT) --ServerApp.port_retries=0 \
	  --ContentsManager.allow_hidden=True $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Re-resolve the pinned lock file after editing pyproject.toml.
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock

clean-state:
	rm -rf .cliplab
