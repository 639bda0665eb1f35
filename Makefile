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

.PHONY: all deps venvs lint test test-py39 test-py313 package inspect demo bench viz clean

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

test-py39: deps $(VENV)/py39/.stamp
	$(VENV)/py39/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests
test-py313: deps $(VENV)/py313/.stamp
	$(VENV)/py313/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests

# The whole suite: lint, both interpreters, then the package and AppInspect on it.
test: lint test-py39 test-py313 inspect

package: deps viz
	$(PY39) devtools/build_package.py --out $(PACKAGE)

inspect: package $(VENV)/tools/.stamp
	$(VENV)/tools/bin/python devtools/inspect_package.py $(PACKAGE)

demo: deps viz $(VENV)/tools/.stamp
	$(VENV)/tools/bin/python demo/run_demo.py --package $(PACKAGE)

bench: deps viz $(VENV)/tools/.stamp
	$(VENV)/tools/bin/python bench/run_all.py

clean:
	rm -rf lib dist build $(VENV) demo/out bench/out tests/out
