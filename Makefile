# Two commands for a fresh clone with nothing but python3:
#   make test   unit tests, nbval over every chapter (fast mode), strict book build (fast mode)
#   make book   the whole book, every chapter executed at full size
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(wildcard book/*.ipynb)
# pip prints a warning for every index folder that lacks a package; they are noise here.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: help venv test unit nbval book-fast book figs bench clean

help:
	@echo "make test   - unit tests + nbval over book/*.ipynb + strict book build (DDPM_EDU_FAST=1)"
	@echo "make book   - build the whole book into _build/html, executing every chapter"
	@echo "make figs   - regenerate figs/*.png from the library's plot functions"
	@echo "make bench  - run the CPU benchmarks in bench/"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | $(QUIET_PIP)
	@touch $@

venv: $(STAMP)

# onnxruntime-web (npm), pinned by package-lock.json: the book ships its WASM, tests/test_live.py runs it under node.
ORT := node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm
$(ORT): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

test: unit nbval book-fast

unit: $(STAMP) $(ORT)
	DDPM_EDU_FAST=1 MPLBACKEND=Agg $(PY) -m pytest tests

nbval: $(STAMP) $(ORT)
ifneq ($(NOTEBOOKS),)
	DDPM_EDU_FAST=1 $(PY) -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOKS)
endif

# The fast build has its own output folder, so its cached fast-mode outputs never reach `make book`.
book-fast: $(STAMP) $(ORT)
	DDPM_EDU_FAST=1 $(JB) build -W -n --keep-going --path-output _build/fast .

book: $(STAMP) $(ORT)
	$(JB) build -W -n --keep-going .
	@echo "The book is at $(CURDIR)/_build/html/index.html"

figs: $(STAMP)
	$(PY) -m ddpm_edu figs --out figs

bench: $(STAMP)
	$(PY) bench/train_throughput.py --preset digits
	$(PY) bench/sample_throughput.py

clean:
	rm -rf _build
