# The verbs people type. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PKG := files/python
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run demo test lint unit bench bench-sync bench-producer clean

setup:
	@scripts/setup.sh

run: demo

demo: setup
	$(BIN)/python scripts/demo.py

lint: setup
	$(BIN)/ruff check $(PKG) bench scripts
	$(BIN)/mypy --config-file $(PKG)/pyproject.toml $(PKG)/freqfeed

unit: setup
	cd $(PKG) && FREQFEED_FREQTRADE_PYTHON=$(CURDIR)/.cache/freqtrade-venv/bin/python ../../$(BIN)/pytest -p no:cacheprovider

test: lint unit

bench: bench-sync bench-producer

bench-sync: setup
	$(BIN)/python bench/sync_bench.py --json bench/results/sync.json

bench-producer: setup
	$(BIN)/python bench/producer_bench.py --parts a,b --json bench/results/producer-backfill.json
	$(BIN)/python bench/producer_bench.py --parts c,d --json bench/results/producer-live.json

clean:
	rm -rf $(VENV) .cache
