# Every target creates the virtualenv and installs what it needs by itself:
# `run` and `demo` only the package and the playground; `test`, `lint` and `bench` the dev tools.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The virtualenv's own pip when it has one, else this Python's pip aimed at it (`--python`):
# creating a virtualenv without pip saves the ~6 s ensurepip takes.
PIP    = $$($(BIN)/python -m pip --version >/dev/null 2>&1 \
           && echo "$(BIN)/python -m pip" || echo "$(PYTHON) -m pip --python $(BIN)/python") \
         --disable-pip-version-check
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run demo test lint bench clean

$(BIN)/python:
	@echo "Creating the virtualenv in $(VENV)/ (first run only)…"
	@if $(PYTHON) -m pip --version >/dev/null 2>&1; then \
		$(PYTHON) -m venv --without-pip $(VENV); else $(PYTHON) -m venv $(VENV); fi

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing Splitshot, its playground (discord.py, Pillow, SimCord) and offline OCR into $(VENV)/ — first run only, about half a minute…"
	@$(PIP) install --quiet --no-compile -e '.[playground,ocr]'
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing Splitshot with its dev tools (pytest, ruff, mypy, Playwright) into $(VENV)/…"
	@$(PIP) install --quiet -e '.[dev,ocr]'
	@touch $@ $(RUN_STAMP)

## The main job: the bot with DISCORD_TOKEN, else the local playground (offline, demo models).
run: $(RUN_STAMP)
	@echo "Starting Splitshot…"
	@$(BIN)/splitshot run

## The offline CLI demo: the comparison page's portrait prompt, GPT-Image 2 vs Nano Banana Pro.
demo: $(RUN_STAMP)
	$(BIN)/splitshot compare --example boardwalk --use-case portrait \
		--model gpt-image-2 --model nano-banana-pro --out out/boardwalk

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(DEV_STAMP)
	$(BIN)/python bench/compose.py
	$(BIN)/python bench/ledger.py
	@test ! -f bench/votes.py || $(BIN)/python bench/votes.py
	$(BIN)/python bench/ocr.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
