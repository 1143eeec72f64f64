# Two commands on a fresh machine: `make chat` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# npm projects of the tests (official and third-party JS clients), each installed from its lock file
NPM_PROJECTS := tests/server/ts tests/clients/claude_code tests/clients/vercel_ai
NPM_STAMPS := $(NPM_PROJECTS:%=%/node_modules/.streamchat-lock)

.PHONY: chat serve web test lint bench bench-web clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# npm ci runs the packages' install scripts (Claude Code's postinstall places its native binary);
# the stamp holds the lock file's hash, as the tests check it
%/node_modules/.streamchat-lock: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund
	sha256sum $*/package-lock.json | cut -d' ' -f1 | tr -d '\n' > $@

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

test: $(STAMP) $(CHROMIUM) $(NPM_STAMPS)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/server_overhead.py
	$(BIN)/python benchmarks/protocol_throughput.py
	$(BIN)/python benchmarks/render_vs_live.py
	$(BIN)/python benchmarks/interrupt_latency.py
	$(MAKE) bench-web

# The web chat's claims (issue 6): real Chromium, the real server; results in docs/benchmarks.md.
bench-web: $(STAMP) $(CHROMIUM)
	$(BIN)/python benchmarks/web_streaming.py
	$(BIN)/python benchmarks/web_render_cpu.py
	$(BIN)/python benchmarks/web_concurrency.py

clean:
	rm -rf $(VENV)
