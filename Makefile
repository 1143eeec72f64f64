# Two commands on a fresh machine: `make chat` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat serve test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

chat: $(STAMP)
	$(BIN)/streamchat

serve: $(STAMP)
	$(BIN)/streamchat serve

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/server_overhead.py
	$(BIN)/python benchmarks/protocol_throughput.py
	$(BIN)/python benchmarks/render_vs_live.py
	$(BIN)/python benchmarks/interrupt_latency.py

clean:
	rm -rf $(VENV)
