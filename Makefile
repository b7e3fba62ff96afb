# signcore: one entry point for users and CI.
#
#   make demo    set everything up (once), build and install signcore, train the demo MLP
#   make test    set everything up (once), build and install signcore, run the whole test suite
#
# Every step is idempotent and skipped when already done:
#   1. Debian packages (apt-get) only when dpkg says one is not installed;
#   2. a virtual environment in .venv;
#   3. the Python dependencies, only when the requirement list changed (a stamp keyed on its hash);
#   4. `pip install .` only when a source file changed; the CMake build folder build/<wheel tag> is
#      kept between runs, so only what changed is recompiled.
#
# Variables: PYTHON (interpreter that creates the venv), DEMO_ARGS (e.g. DEMO_ARGS="--epochs 5"),
# TESTS (files or folders to test, default tests), PYTEST_ARGS (e.g. PYTEST_ARGS="-k dense -x"),
# BENCH_ARGS (e.g. BENCH_ARGS="--threads 1").

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON = python3
TESTS = tests
VENV := .venv
VPY := $(VENV)/bin/python

# What the C++ extension needs from Debian (nlohmann-json3-dev and xtl-dev come with libxtensor-dev;
# g++ is normally in the base image and is listed so a bare machine gets a compiler too).
APT_PACKAGES := g++ libxtensor-dev libxtensor-blas-dev libopenblas-dev libopencv-dev

# Python dependencies: runtime + tests + notebooks + benchmarks, and the build backend (installed in
# the venv so that `pip install --no-build-isolation .` does not fetch it again on every build).
REQUIREMENTS := numpy pytest matplotlib nbclient nbformat ipykernel scikit-learn torch==2.13.0
# (Quoted for the shell: `>` would be a redirection.)
BUILD_REQUIREMENTS := 'scikit-build-core>=0.8' 'pybind11>=2.11' ninja 'cmake>=3.18'
REQ_HASH := $(shell printf '%s\n' $(REQUIREMENTS) $(BUILD_REQUIREMENTS) | sha256sum | cut -c1-16)
DEPS_STAMP := $(VENV)/.deps-$(REQ_HASH)
INSTALL_STAMP := $(VENV)/.signcore-installed

# Everything that goes into the wheel: a change to any of these triggers `pip install .`.
SOURCES := CMakeLists.txt pyproject.toml \
	$(shell find cpp python -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null) \
	$(shell find cpp python -type d -not -path '*/__pycache__*' 2>/dev/null)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup apt build demo test bench clean distclean

help:
	@echo "make demo    set up, build, and train the demo MLP on the bundled digits data"
	@echo "make test    set up, build, and run the whole test suite"
	@echo "make setup   only the set-up (Debian packages, .venv, Python dependencies)"
	@echo "make build   set up and (re)install signcore into .venv"
	@echo "make bench   set up, build, and run the benchmarks (signcore vs PyTorch)"
	@echo "make clean   remove the pip build folder, the install stamp and results/"
	@echo "make distclean  also remove .venv and every build folder"

setup: apt $(DEPS_STAMP)

# Installs only the missing packages; `apt-get update` runs once, and only if something is missing.
apt:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get: installing$$missing"; \
	  $(SUDO) apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): | $(VPY)
	$(VPY) -m pip install $(REQUIREMENTS) $(BUILD_REQUIREMENTS)
	rm -f $(VENV)/.deps-*
	touch $@

# pip builds in build/<wheel tag> (pyproject.toml: build-dir), so this is incremental.
$(INSTALL_STAMP): $(SOURCES) $(DEPS_STAMP) | apt
	env -u SIGNCORE_DEV_BUILD $(VPY) -m pip install --no-build-isolation --no-deps .
	touch $@

build: apt $(INSTALL_STAMP)

demo: build
	env -u SIGNCORE_DEV_BUILD $(VPY) -m signcore.demo $(DEMO_ARGS)

# Run from the repository root: python/ is not on sys.path, so the installed package is tested.
test: build
	env -u SIGNCORE_DEV_BUILD MPLBACKEND=Agg $(VPY) -m pytest $(TESTS) -q $(PYTEST_ARGS)

bench: build
	@for b in benchmarks/bench_*.py; do \
	  echo "== $$b"; \
	  env -u SIGNCORE_DEV_BUILD $(VPY) "$$b" $(BENCH_ARGS); \
	done

clean:
	rm -rf build/cp* $(INSTALL_STAMP) results .pytest_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) build
