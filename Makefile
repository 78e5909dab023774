# The verbs people type. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PKG := files/python
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run test lint unit bench clean

setup:
	@scripts/setup.sh

lint: setup
	$(BIN)/ruff check $(PKG)
	$(BIN)/mypy --config-file $(PKG)/pyproject.toml $(PKG)/freqfeed

unit: setup
	cd $(PKG) && FREQFEED_FREQTRADE_PYTHON=$(CURDIR)/.cache/freqtrade-venv/bin/python ../../$(BIN)/pytest -p no:cacheprovider

test: lint unit

bench: setup
	$(BIN)/python bench/sync_bench.py

clean:
	rm -rf $(VENV) .cache
