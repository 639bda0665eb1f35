# vtpivot development tasks. The repository root is the Splunk app folder; everything the
# package ships is chosen by the allow-list in devtools/build_package.py.
SHELL := /bin/bash
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PY39   ?= $(PYENV_ROOT)/versions/3.9.18/bin/python
PY313  ?= $(PYENV_ROOT)/versions/3.13.0/bin/python
PYTOOL ?= $(PYENV_ROOT)/versions/3.11.7/bin/python
VERSION := $(shell sed -n 's/^version *= *//p' default/app.conf | head -1)
PACKAGE := dist/vtpivot-$(VERSION).tgz
VENV := .venv
PYTEST_ARGS ?=

.PHONY: all sysdeps deps venvs lint test test-py39 test-py313 test-js package inspect demo bench viz clean

# Debian packages (libmagic1, redis-server, chromium): installed when missing and root.
sysdeps:
	bash devtools/system_deps.sh --required

all: test

# Vendored runtime dependencies: real Python 3.9 pip, pure-Python wheels only.
lib/.stamp: requirements.txt requirements-splunksdk.txt devtools/vendor_deps.sh
	PY39=$(PY39) bash devtools/vendor_deps.sh lib
	touch $@
deps: lib/.stamp

$(VENV)/py39/.stamp: requirements-dev.txt
	$(PY39) -m venv $(VENV)/py39 && $(VENV)/py39/bin/pip install -q -r requirements-dev.txt
	touch $@
$(VENV)/py313/.stamp: requirements-dev.txt
	$(PY313) -m venv $(VENV)/py313 && $(VENV)/py313/bin/pip install -q -r requirements-dev.txt
	touch $@
$(VENV)/tools/.stamp: requirements-tools.txt requirements-dev.txt
	$(PYTOOL) -m venv $(VENV)/tools && $(VENV)/tools/bin/pip install -q -r requirements-tools.txt -r requirements-dev.txt
	touch $@
venvs: $(VENV)/py39/.stamp $(VENV)/py313/.stamp $(VENV)/tools/.stamp

lint: $(VENV)/tools/.stamp
	$(VENV)/tools/bin/ruff check bin devtools tests bench demo

viz:
	bash devtools/build_viz.sh

# The demo's end-to-end test draws the graph with the built bundle: build it first.
test-py39: deps viz $(VENV)/py39/.stamp
	PY39=$(PY39) PY313=$(PY313) $(VENV)/py39/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests
test-py313: deps viz $(VENV)/py313/.stamp
	PY39=$(PY39) PY313=$(PY313) $(VENV)/py313/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests

# The graph's unit and headless-Chromium tests, and the setup page's browser test.
test-js: viz
	bash devtools/test_viz.sh
	bash devtools/test_setup_ui.sh

# The whole suite: lint, both interpreters, the JS/browser tests, then the package and
# AppInspect on it.
test: sysdeps lint test-py39 test-py313 test-js inspect

package: deps viz
	$(PY39) devtools/build_package.py --out $(PACKAGE)

inspect: package $(VENV)/tools/.stamp
	$(VENV)/tools/bin/python devtools/inspect_package.py $(PACKAGE)

demo: package $(VENV)/tools/.stamp
	bash devtools/system_deps.sh
	PY39=$(PY39) $(VENV)/tools/bin/python demo/run_demo.py --package $(PACKAGE) $(DEMO_ARGS)

$(VENV)/tools/.bench-stamp: $(VENV)/tools/.stamp bench/requirements-bench.txt
	$(VENV)/tools/bin/pip install -q -r bench/requirements-bench.txt
	touch $@
bench: deps viz $(VENV)/tools/.bench-stamp
	PY39=$(PY39) $(VENV)/tools/bin/python bench/run_all.py

clean:
	rm -rf lib dist build $(VENV) demo/out bench/out tests/out
