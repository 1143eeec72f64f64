# Two commands on a fresh machine: `make chat` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat serve web test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

chat: $(STAMP)
	$(BIN)/streamchat

serve: $(STAMP)
	$(BIN)/streamchat serve

web: $(STAMP)
	$(BIN)/streamchat web --open

# The browser tests drive Debian's Chromium (never a downloaded one): install it once.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi

test: $(STAMP) $(CHROMIUM)
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
