# Two commands for a fresh clone with nothing but python3 and node:
#   make test   unit tests; the strict book build (fast mode) with every chapter executed in a fresh venv
#               that installs the package as Colab does; then every built page checked in headless Chromium
#   make book   the whole book, every chapter executed at full size
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(wildcard book/*.ipynb book/using/*.ipynb)
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

.PHONY: help venv browser test unit quick nbval colab-venv colab book-fast book-colab check-html pdf book figs bench clean

help:
	@echo "make test   - unit tests + strict book build run in a fresh Colab-like venv + check-html (DDPM_EDU_FAST=1)"
	@echo "make quick  - the library's tests without browser, node, multi-process and slow tests (about a minute)"
	@echo "make colab  - every chapter under nbval in a fresh venv that installs ddpm_edu as Colab does"
	@echo "make check-html [HTML=_build/html] - every built page in headless Chromium, axe-core included; screenshots in $(SHOTS)"
	@echo "make nbval  - every chapter under nbval in .venv (quicker: no fresh install)"
	@echo "make pdf [HTML=_build/html] - print the built book into one PDF, $(HTML)/ddpm-edu.pdf"
	@echo "make book   - build the whole book into _build/html, executing every chapter"
	@echo "make figs   - regenerate figs/*.png from the library's plot functions"
	@echo "make bench  - run the CPU benchmarks in bench/"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | $(QUIET_PIP)
	@touch $@

venv: $(STAMP)

# The npm packages, pinned by package-lock.json: onnxruntime-web (the book ships its WASM, tests/test_live.py runs it
# under node) and axe-core (check-html injects it into every page). `npm ci` runs again whenever package.json or
# package-lock.json is newer than the file it stamps, so a dependency added to them is installed by the next make.
ORT := node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm
$(ORT): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

test: unit book-colab check-html

# The Chromium that the browser checks drive (tests/test_check_html.py and check-html): $(CHROMIUM) if
# set, else the first of /usr/bin/chromium, chromium, google-chrome on PATH (tests/browser/browser.py);
# where none is found, Debian's chromium package is installed.
browser:
	@if [ -z "$(CHROMIUM)" ] && ! $(PYTHON) tests/browser/browser.py >/dev/null 2>&1; then \
	  echo "make: no Chromium found; installing Debian's package: $(SUDO) apt-get install -y chromium"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; fi

unit: $(STAMP) $(ORT) browser
	DDPM_EDU_FAST=1 MPLBACKEND=Agg $(PY) -m pytest --durations=20 tests

# The library's tests without the browser, node, multi-process and slow ones (about a minute).
QUICK := not browser and not node and not multiprocess and not slow
quick: $(STAMP)
	DDPM_EDU_FAST=1 MPLBACKEND=Agg $(PY) -m pytest -q -m "$(QUICK)" --durations=10 tests

nbval: $(STAMP) $(ORT)
ifneq ($(NOTEBOOKS),)
	DDPM_EDU_FAST=1 $(PY) -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOKS)
endif

# The Colab path: a fresh venv with what Colab already has (torch, torchvision, numpy, matplotlib, ipykernel,
# ...: linked from .venv by tools/colab_preinstalled.py rather than installed again), then the package
# installed as each chapter's install cell does it, from a local copy instead of GitHub, and NOT editable,
# so the notebooks use the built wheel, its package data (web/js/*.js, training/configs/*.yml) and the
# dependencies pyproject.toml declares, installed fresh. The copy keeps setuptools' build/ out of the
# checkout; its folder name has no dash, so that pip does not mistake it for a versioned archive and cache
# its wheel. A kernel spec named python3 that runs this venv's Python goes to $(COLAB)/jupyter: with
# JUPYTER_PATH pointing there, Jupyter runs every chapter in the Colab venv. The check before it makes
# sure that a kernel started in book/ imports the installed wheel, not the checkout.
colab-venv: $(STAMP) $(ORT)
	rm -rf $(COLAB) && mkdir -p $(COLAB)/src $(COLAB)/run $(COLAB)/jupyter/kernels/python3
	cp -r pyproject.toml README.md LICENSE ddpm_edu $(COLAB)/src/
	find $(COLAB)/src -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m venv $(COLAB)/venv
	$(PY) tools/colab_preinstalled.py $(COLAB)/venv
	$(COLAB)/venv/bin/python -m pip install --quiet --disable-pip-version-check "ddpm-edu @ file://$(CURDIR)/$(COLAB)/src" 2>&1 | $(QUIET_PIP)
	cd book && env -u PYTHONPATH ../$(COLAB)/venv/bin/python -c 'import ddpm_edu, pathlib, sys; \
	  p = pathlib.Path(ddpm_edu.__file__).resolve().parent; print("colab: ddpm_edu is imported from", p); \
	  ok = p.is_relative_to(pathlib.Path("../$(COLAB)/venv").resolve()) and (p / "web/js/explorer.js").is_file() and any(p.glob("training/configs/*.yml")); \
	  sys.exit(0 if ok else "colab: expected the installed wheel, with web/js/explorer.js and training/configs/*.yml")'
	printf '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3 (Colab venv)", "language": "python"}\n' \
	  "$(CURDIR)/$(COLAB)/venv/bin/python" > $(COLAB)/jupyter/kernels/python3/kernel.json

# Every chapter under nbval in the Colab venv (make test executes them once instead, in book-colab).
colab: colab-venv
	$(COLAB)/venv/bin/python -m pip install --quiet --disable-pip-version-check pytest nbval 2>&1 | $(QUIET_PIP)
ifneq ($(NOTEBOOKS),)
	cd $(COLAB)/run && env -u PYTHONPATH DDPM_EDU_FAST=1 ../venv/bin/python -m pytest --nbval-lax --nbval-current-env \
	  -p no:cacheprovider $(abspath $(NOTEBOOKS))
endif

# The fast build has its own output folder, so its cached fast-mode outputs never reach `make book`.
book-fast: $(STAMP) $(ORT)
	DDPM_EDU_FAST=1 $(JB) build -W -n --keep-going --path-output _build/fast .

# The strict fast build with every chapter executed in the Colab venv (a chapter that fails there fails
# the build, as nbval would): the Colab check and the book's execution are one run of the notebooks.
book-colab: colab-venv
	env -u PYTHONPATH JUPYTER_PATH=$(CURDIR)/$(COLAB)/jupyter DDPM_EDU_FAST=1 $(JB) build -W -n --keep-going --path-output _build/fast .

# A reader's check of the built pages (tests/browser/check_html.py, with axe-core from node_modules), with
# light and dark screenshots in $(SHOTS).
check-html: $(STAMP) $(ORT) browser
	rm -rf $(SHOTS)
	$(PY) tests/browser/check_html.py $(HTML) --shots $(SHOTS)

# The built book as one PDF, $(HTML)/ddpm-edu.pdf, beside the pages it was printed from
# (tools/book_pdf.py: every page of _toc.yml printed by Chromium, then merged with pypdf).
pdf: $(STAMP) browser
	$(PY) tools/book_pdf.py $(HTML)

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
