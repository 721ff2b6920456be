# One command sets up and runs the bot; one sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test chat lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The Telegram bot when TELEGRAM_BOT_TOKEN is set; otherwise a chat in this terminal.
run: $(STAMP)
	$(PY) -m bot

chat: $(STAMP)
	$(PY) -m bot chat

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Benchmarks: accuracy against baselines, scale, end to end, start-up; writes benchmarks/RESULTS.md
# (about 10 minutes). The optional `bench` extra brings the baselines; torch goes first, pinned to
# the CPU build this machine carries: left to pip, sentence-transformers would pull a CUDA torch
# (gigabytes). The bot itself never needs any of it.
bench: $(STAMP)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
