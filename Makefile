# Every target creates the virtualenv and installs what it needs by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ocr]'
	@touch $(STAMP)

## The main job: the bot with DISCORD_TOKEN, else the local playground (offline, demo models).
run: $(STAMP)
	$(BIN)/splitshot run

## The offline CLI demo: the comparison page's portrait prompt, GPT-Image 2 vs Nano Banana Pro.
demo: $(STAMP)
	$(BIN)/splitshot compare --example boardwalk --use-case portrait \
		--model gpt-image-2 --model nano-banana-pro --out out/boardwalk

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/compose.py
	$(BIN)/python bench/ledger.py
	@test ! -f bench/votes.py || $(BIN)/python bench/votes.py
	$(BIN)/python bench/ocr.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
