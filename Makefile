# Two commands for a fresh clone with nothing but python3 and node:
#   make test   unit tests, every chapter under nbval as Colab installs the package (fast mode),
#               strict book build (fast mode), then every built page checked in headless Chromium
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

# check-html: the HTML folder it reads (default: the fast build's), where the screenshots go, and the
# browser (default: /usr/bin/chromium, else chromium or google-chrome on PATH; see tests/browser/browser.py).
HTML     ?= _build/fast/_build/html
SHOTS    ?= _build/screenshots
CHROMIUM ?=
export CHROMIUM
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)
# colab: a fresh venv, the package sources it installs from, and an empty working directory.
COLAB    := _build/colab

.PHONY: help venv browser test unit nbval colab book-fast check-html book figs bench clean

help:
	@echo "make test   - unit tests + colab + strict book build + check-html (DDPM_EDU_FAST=1)"
	@echo "make colab  - every chapter under nbval in a fresh venv that installs ddpm_edu as Colab does"
	@echo "make check-html [HTML=_build/html] - every built page in headless Chromium; screenshots in $(SHOTS)"
	@echo "make nbval  - every chapter under nbval in .venv (quicker: no fresh install)"
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

test: unit colab book-fast check-html

# The Chromium that the browser checks drive (tests/test_check_html.py and check-html): $(CHROMIUM) if
# set, else the first of /usr/bin/chromium, chromium, google-chrome on PATH (tests/browser/browser.py);
# where none is found, Debian's chromium package is installed.
browser:
	@if [ -z "$(CHROMIUM)" ] && ! $(PYTHON) tests/browser/browser.py >/dev/null 2>&1; then \
	  echo "make: no Chromium found; installing Debian's package: $(SUDO) apt-get install -y chromium"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; fi

unit: $(STAMP) $(ORT) browser
	DDPM_EDU_FAST=1 MPLBACKEND=Agg $(PY) -m pytest tests

nbval: $(STAMP) $(ORT)
ifneq ($(NOTEBOOKS),)
	DDPM_EDU_FAST=1 $(PY) -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOKS)
endif

# The Colab path: a fresh venv with what Colab already has (torch and torchvision, linked from .venv by
# tools/colab_preinstalled.py rather than installed again; ipykernel; pytest and nbval to run the
# check), then the package installed as each chapter's install cell does it, from a local copy instead
# of GitHub, and NOT editable, so the notebooks use the built wheel, its package data (web/js/*.js,
# training/configs/*.yml) and the dependencies pyproject.toml declares, installed fresh. The copy keeps
# setuptools' build/ out of the checkout; its folder name has no dash, so that pip does not mistake it
# for a versioned archive and cache its wheel. nbval starts each kernel in book/, where the
# checkout's ddpm_edu is not importable; the check before it makes sure.
colab: $(STAMP) $(ORT)
	rm -rf $(COLAB) && mkdir -p $(COLAB)/src $(COLAB)/run
	cp -r pyproject.toml README.md LICENSE ddpm_edu $(COLAB)/src/
	find $(COLAB)/src -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m venv $(COLAB)/venv
	$(PY) tools/colab_preinstalled.py $(COLAB)/venv
	$(COLAB)/venv/bin/python -m pip install --quiet --disable-pip-version-check ipykernel pytest nbval 2>&1 | $(QUIET_PIP)
	$(COLAB)/venv/bin/python -m pip install --quiet --disable-pip-version-check "ddpm-edu @ file://$(CURDIR)/$(COLAB)/src" 2>&1 | $(QUIET_PIP)
	cd book && env -u PYTHONPATH ../$(COLAB)/venv/bin/python -c 'import ddpm_edu, pathlib, sys; \
	  p = pathlib.Path(ddpm_edu.__file__).resolve().parent; print("colab: ddpm_edu is imported from", p); \
	  ok = p.is_relative_to(pathlib.Path("../$(COLAB)/venv").resolve()) and (p / "web/js/explorer.js").is_file() and any(p.glob("training/configs/*.yml")); \
	  sys.exit(0 if ok else "colab: expected the installed wheel, with web/js/explorer.js and training/configs/*.yml")'
ifneq ($(NOTEBOOKS),)
	cd $(COLAB)/run && env -u PYTHONPATH DDPM_EDU_FAST=1 ../venv/bin/python -m pytest --nbval-lax --nbval-current-env \
	  -p no:cacheprovider $(abspath $(NOTEBOOKS))
endif

# The fast build has its own output folder, so its cached fast-mode outputs never reach `make book`.
book-fast: $(STAMP) $(ORT)
	DDPM_EDU_FAST=1 $(JB) build -W -n --keep-going --path-output _build/fast .

# A reader's check of the built pages (tests/browser/check_html.py), with screenshots in $(SHOTS).
check-html: $(STAMP) browser
	rm -rf $(SHOTS)
	$(PY) tests/browser/check_html.py $(HTML) --shots $(SHOTS)

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
