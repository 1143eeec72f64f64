"""A realistic long Markdown reply for the web benchmarks, and the servers they stream it from.

`make_reply(size, seed)` writes what a model writes in a long technical answer: sections with
headings, paragraphs with inline code, links and emphasis, bullet and numbered lists (some nested),
tables of 4-12 rows, quotes, and code blocks of realistic size in Python, TypeScript, Rust, SQL,
bash and JSON: most 12-60 lines, and now and then a long one of 80-140 lines (a whole module), as
long answers have. The same seed gives the same text; a smaller size gives a prefix of the same
sequence of blocks, so an 8 KB reply is the start of the 80 KB one.

`start_streamchat` starts the real web server (`streamchat web`'s app: the web chat and the `/v1`
API on the script engine, a real store, the real SDK between them) in its own process, with one
change for measuring: the script engine paces its deltas on a schedule (delta n at start + n/rate,
so 2,000 deltas/s really is 2,000 a second) and writes the wall-clock instant it produces each
reply's last delta to a file (`Stamps`). Run this file as `web_reply.py serve ...` to be that server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHUNK = 4  # characters per delta
RATE = 2000.0  # deltas per second

_NOUNS = (  # noqa: SIM905
    "stream token renderer block tail frame parser buffer cursor server client request response "
    "context window cache table column row list heading paragraph fence lexer event queue socket "
    "thread worker batch schema index page browser layout style sequence offset snapshot"
).split()
_VERBS = (  # noqa: SIM905
    "streams renders commits parses sends keeps drops resumes reads writes caches splits joins "
    "replaces appends measures schedules flushes"
).split()
_ADJECTIVES = (  # noqa: SIM905
    "finished unfinished partial whole long short cheap stable live final small large"
).split()

_PYTHON = '''\
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class {Name}:
    """Keeps the {noun}s of one {noun2} and hands them out in order."""

    name: str
    limit: int = {k}
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, item: dict[str, Any]) -> int:
        """Append `item` and return its position (the oldest one is dropped past the limit)."""
        self.items.append(item)
        if len(self.items) > self.limit:
            del self.items[0]
        return len(self.items) - 1

    def find(self, key: str) -> dict[str, Any] | None:
        for item in reversed(self.items):
            if item.get("key") == key:
                return item
        return None


async def {name}(queue: asyncio.Queue[bytes], store: {Name}) -> None:
    """Read frames from `queue` until an empty one arrives."""
    while True:
        frame = await queue.get()
        if not frame:
            break
        try:
            data = json.loads(frame)
        except ValueError as exc:
            print(f"skipping a bad frame: {{exc}}")
            continue
        position = store.add(data)
        if position % {k} == 0:
            await asyncio.sleep(0)  # let the other tasks run


def main(argv: list[str] | None = None) -> int:
    store = {Name}("{noun}", limit={k})
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for index in range({k}):
        queue.put_nowait(json.dumps({{"key": str(index), "value": index * 2}}).encode())
    queue.put_nowait(b"")
    asyncio.run({name}(queue, store))
    print(len(store.items), "items kept")
    return 0
'''

_TYPESCRIPT = """\
import {{ EventEmitter }} from "node:events";

export interface {Name}Options {{
  url: string;
  retries?: number;
  timeoutMs?: number;
}}

type Listener = (event: {{ type: string; data: unknown }}) => void;

export class {Name} extends EventEmitter {{
  private lastId = 0;
  private source: EventSource | null = null;

  constructor(private readonly options: {Name}Options) {{
    super();
  }}

  open(listener: Listener): void {{
    const url = new URL(this.options.url);
    if (this.lastId) url.searchParams.set("after", String(this.lastId));
    this.source = new EventSource(url);
    this.source.addEventListener("message", (event: MessageEvent<string>) => {{
      const id = Number(event.lastEventId);
      if (!(id > this.lastId)) return; // already seen
      this.lastId = id;
      listener({{ type: "message", data: JSON.parse(event.data) }});
    }});
    this.source.onerror = () => {{
      if (this.source?.readyState === EventSource.CLOSED) this.emit("closed", this.lastId);
    }};
  }}

  close(): void {{
    this.source?.close();
    this.source = null;
  }}
}}

export async function {name}(url: string, count = {k}): Promise<number[]> {{
  const response = await fetch(url, {{ headers: {{ accept: "application/json" }} }});
  if (!response.ok) throw new Error(`request failed: ${{response.status}}`);
  const body = (await response.json()) as {{ items: {{ id: number; score: number }}[] }};
  return body.items
    .filter((item) => item.score > {k})
    .slice(0, count)
    .map((item) => item.id);
}}
"""

_RUST = """\
use std::collections::HashMap;
use std::io::{{self, BufRead, Write}};

#[derive(Debug, Clone, PartialEq)]
pub struct {Name} {{
    pub name: String,
    pub counts: HashMap<String, usize>,
    limit: usize,
}}

impl {Name} {{
    pub fn new(name: &str) -> Self {{
        Self {{ name: name.to_string(), counts: HashMap::new(), limit: {k} }}
    }}

    /// Count the words of one line; returns how many were new.
    pub fn add_line(&mut self, line: &str) -> usize {{
        let mut new_words = 0;
        for word in line.split_whitespace() {{
            let entry = self.counts.entry(word.to_lowercase()).or_insert(0);
            if *entry == 0 {{
                new_words += 1;
            }}
            *entry += 1;
        }}
        new_words
    }}

    pub fn top(&self) -> Vec<(&String, &usize)> {{
        let mut pairs: Vec<_> = self.counts.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        pairs.truncate(self.limit);
        pairs
    }}
}}

fn {name}() -> io::Result<()> {{
    let stdin = io::stdin();
    let mut counter = {Name}::new("{noun}");
    for line in stdin.lock().lines() {{
        counter.add_line(&line?);
    }}
    let mut out = io::stdout().lock();
    for (word, count) in counter.top() {{
        writeln!(out, "{{word:>20}} {{count}}")?;
    }}
    Ok(())
}}
"""

_SQL = """\
-- {Name}: the {noun}s of each {noun2}, newest first, with their totals.
CREATE TABLE IF NOT EXISTS {name} (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE,
    title       TEXT NOT NULL DEFAULT '',
    tokens      INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX IF NOT EXISTS {name}_owner ON {name} (owner_id, created_at DESC);

WITH recent AS (
    SELECT owner_id, id, title, tokens,
           row_number() OVER (PARTITION BY owner_id ORDER BY created_at DESC) AS position
    FROM {name}
    WHERE created_at >= date('now', '-{k} days')
)
SELECT o.name, r.title, r.tokens,
       sum(r.tokens) OVER (PARTITION BY r.owner_id) AS owner_total
FROM recent AS r
JOIN owners AS o ON o.id = r.owner_id
WHERE r.position <= {k}
ORDER BY owner_total DESC, r.position;
"""

_BASH = """\
#!/usr/bin/env bash
set -euo pipefail

# {Name}: build, test and package the {noun} service.
ROOT="$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)"
JOBS="${{JOBS:-{k}}}"

log() {{ printf '%s %s\\n' "$(date +%H:%M:%S)" "$*" >&2; }}

cd "$ROOT"
if [[ ! -d .venv ]]; then
  log "creating the virtual environment"
  python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[test]'

log "running the tests with $JOBS jobs"
.venv/bin/pytest -q -n "$JOBS" tests/ || {{ log "tests failed"; exit 1; }}

for file in dist/*.whl; do
  [[ -e "$file" ]] || continue
  sha256sum "$file" | tee -a dist/SHA256SUMS
done
log "done: $(ls dist | wc -l) files in dist/"
"""

_JSON = """\
{{
  "name": "{name}",
  "version": "1.{k}.0",
  "settings": {{
    "max_tokens": {k}00,
    "temperature": 0.7,
    "stop_sequences": ["\\n\\nHuman:"],
    "stream": true
  }},
  "messages": [
    {{"role": "user", "content": "Summarize the {noun} log."}},
    {{"role": "assistant", "content": "The {noun} log has {k} entries."}}
  ],
  "tools": [
    {{
      "name": "read_{noun}",
      "description": "Read one {noun} by id.",
      "input_schema": {{"type": "object", "properties": {{"id": {{"type": "integer"}}}}, "required": ["id"]}}
    }}
  ]
}}
"""

_CODE = {
    "python": _PYTHON, "typescript": _TYPESCRIPT, "rust": _RUST, "sql": _SQL, "bash": _BASH, "json": _JSON,
}  # fmt: skip


def _words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(_NOUNS) if i % 3 else rng.choice(_VERBS + _ADJECTIVES) for i in range(count)]


def _sentence(rng: random.Random) -> str:
    words = _words(rng, rng.randint(7, 18))
    for _ in range(rng.randint(0, 2)):
        index = rng.randrange(len(words))
        style = rng.choice(["**{}**", "*{}*", "`{}`", "`{}()`", "[{}](https://example.com/docs/{})"])
        words[index] = style.format(words[index], words[index])
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", ":", "?"])


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))


def _code(rng: random.Random, lines: int) -> str:
    language = rng.choice(sorted(_CODE))
    noun, noun2 = rng.choice(_NOUNS), rng.choice(_NOUNS)
    template = _CODE[language].format(name=f"{noun}_{noun2}", Name=noun.capitalize() + noun2.capitalize(),
                                      noun=noun, noun2=noun2, k=rng.randint(2, 99)).splitlines()  # fmt: skip
    body: list[str] = []
    while len(body) < lines:  # a long block: the module goes on with more of the same
        body.extend(template)
    return f"```{language}\n" + "\n".join(body[:lines]) + "\n```"


def _bullets(rng: random.Random) -> str:
    loose = rng.random() < 0.25
    items: list[str] = []
    for _ in range(rng.randint(3, 8)):
        items.append(f"- {_sentence(rng)}")
        if rng.random() < 0.25:
            items.extend(f"  - {_sentence(rng)}" for _ in range(rng.randint(1, 3)))
    return ("\n\n" if loose else "\n").join(items)


def _table(rng: random.Random) -> str:
    columns = rng.randint(3, 5)
    header = "| " + " | ".join(rng.choice(_NOUNS).capitalize() for _ in range(columns)) + " |"
    rule = "|" + "|".join(rng.choice(["---", ":---", "---:", ":---:"]) for _ in range(columns)) + "|"
    rows = []
    for _ in range(rng.randint(4, 12)):
        cells = [" ".join(_words(rng, rng.randint(1, 4))) for _ in range(columns - 1)]
        rows.append("| " + " | ".join([f"`{rng.choice(_NOUNS)}`", *cells]) + " |")
    return "\n".join([header, rule, *rows])


def _section(rng: random.Random, number: int) -> list[str]:
    """One section: a heading, prose, and a few of lists, tables, code and quotes."""
    blocks = [f"## {number}. {rng.choice(_ADJECTIVES).capitalize()} {rng.choice(_NOUNS)}", _paragraph(rng)]
    for _ in range(rng.randint(3, 6)):
        kind = rng.choices(["paragraph", "bullets", "numbers", "table", "code", "quote", "subheading"],
                           weights=[28, 14, 8, 9, 18, 4, 6])[0]  # fmt: skip
        if kind == "paragraph":
            blocks.append(_paragraph(rng))
        elif kind == "bullets":
            blocks.append(_bullets(rng))
        elif kind == "numbers":
            blocks.append("\n".join(f"{i}. {_sentence(rng)}" for i in range(1, rng.randint(3, 7) + 1)))
        elif kind == "table":
            blocks.append(_table(rng))
        elif kind == "code":
            long = rng.random() < 0.15
            blocks.append(_code(rng, rng.randint(80, 140) if long else rng.randint(12, 60)))
        elif kind == "quote":
            blocks.append("\n".join(f"> {_sentence(rng)}" for _ in range(rng.randint(1, 3))))
        else:
            blocks.append(f"### {rng.choice(_NOUNS).capitalize()} and {rng.choice(_NOUNS)}")
    return blocks


def make_reply(size: int = 80_000, seed: int = 7) -> str:
    """A deterministic Markdown reply of about `size` characters, cut at a block boundary."""
    rng = random.Random(seed)
    blocks = ["# How the streaming pipeline works", _paragraph(rng)]
    length = sum(len(b) + 2 for b in blocks)
    number = 0
    while length < size:
        number += 1
        for block in _section(rng, number):
            if length >= size:
                break
            blocks.append(block)
            length += len(block) + 2
    return "\n\n".join(blocks) + "\n"


def describe(reply: str) -> str:
    """One line about the reply's make-up (for the benchmark's output)."""
    from streamchat.render.blocks import FENCE, block_lines, split_blocks

    blocks = split_blocks(reply)
    fences = [len(block_lines(b)) - 2 for b in blocks if b.kind == FENCE]
    code = sum(len(b.source) for b in blocks if b.kind == FENCE)
    kinds = [b.kind for b in blocks]
    fences.sort()
    return (
        f"{len(reply):,} chars, {len(blocks)} blocks: {len(fences)} code blocks of {fences[0]}-{fences[-1]} "
        f"lines (median {fences[len(fences) // 2]}; {code / len(reply):.0%} of the text), "
        f"{kinds.count('table_open')} tables, "
        f"{kinds.count('bullet_list_open') + kinds.count('ordered_list_open')} lists, "
        f"{kinds.count('heading_open')} headings, {kinds.count('paragraph_open')} paragraphs"
    )


def deltas(text: str, size: int = CHUNK) -> list[str]:
    """`text` cut into deltas of `size` characters, as the script engine cuts it."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


# -- the real server, on a script engine that keeps time ---------------------------------------------


def _scheduled_engine(base: Any, stamps: Path) -> Any:
    """A ScriptEngine subclass: delta n due at start + n/rate; the last delta's instant goes to `stamps`."""
    from streamchat.api.stream import Finish, TextDelta

    class ScheduledScriptEngine(base):  # type: ignore[misc, valid-type]
        def generate(self, request: Any, cancel: threading.Event) -> Iterator[Any]:
            rate, self.rate = self.rate, 0.0  # the schedule below paces instead of a sleep per delta
            try:
                parts = super().generate(request, cancel)
            finally:
                self.rate = rate
            start = time.perf_counter()
            count, first, last = 0, 0.0, 0.0
            for part in parts:
                if isinstance(part, TextDelta):
                    if (
                        rate
                        and (wait := start + count / rate - time.perf_counter()) > 0
                        and cancel.wait(wait)
                    ):
                        return
                    count += 1
                    last = time.time()  # the wall clock: the page's clock is compared with it
                    first = first or last
                if isinstance(part, Finish):
                    line = json.dumps({"first_delta": first, "last_delta": last, "deltas": count})
                    with stamps.open("a", encoding="utf-8") as file:
                        file.write(line + "\n")
                yield part

    return ScheduledScriptEngine


def serve_main(argv: list[str]) -> int:
    """`web_reply.py serve --stamps FILE -- <streamchat web options>`: the real web app, as `streamchat web`
    runs it."""
    parser = argparse.ArgumentParser(prog="web_reply.py serve")
    parser.add_argument("--stamps", type=Path, required=True)
    ours, _, rest = _split(argv)
    own = parser.parse_args(ours)

    from streamchat.cli import build_parser
    from streamchat.endpoint import resolve_settings
    from streamchat.engines.script import ScriptEngine
    from streamchat.server import ServerSettings, create_app
    from streamchat.server.run import listen, serve
    from streamchat.web.command import local_web_app

    args = build_parser().parse_args(["web", *rest])
    chat = resolve_settings(args)
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]
    spec = args.engine
    if not spec.startswith("script:"):
        raise SystemExit("the benchmark server runs the script engine: --engine script:FILE")
    engine_class = _scheduled_engine(ScriptEngine, own.stamps)
    engine = engine_class.from_file(Path(spec[len("script:") :]), chunk=args.script_chunk,
                                    rate=args.script_rate, seed=args.seed)  # fmt: skip
    settings = ServerSettings(api_key=args.api_key, max_queue=args.max_queue)
    app, web = local_web_app(engine, create_app(engine, settings), args, args.host, port, chat)
    print(f"open http://127.0.0.1:{port}/", flush=True)
    try:
        serve(app, sock)
    finally:
        web.runs.stop_all()
    return 0


def _split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], "--", argv[at + 1 :]
    return argv, "", []


@dataclass
class Server:
    """A server process the benchmark started: its URL, its pid, the file of its engine's stamps."""

    url: str
    process: subprocess.Popen[str]
    stamps: Path
    home: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stamp_lines(self) -> list[dict[str, float]]:
        """The engine's stamps, one per reply, oldest first."""
        if not self.stamps.exists():
            return []
        return [json.loads(line) for line in self.stamps.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _read_url(process: subprocess.Popen[str], what: str) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("open http"):
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
            return line.split("open ", 1)[1].strip().rstrip("/")
    raise RuntimeError(f"{what} did not start: {''.join(lines)}")


@contextlib.contextmanager
def start_streamchat(script: str, *, rate: float = RATE, chunk: int = CHUNK, max_tokens: int = 30_000,
                     extra: list[str] | None = None) -> Iterator[Server]:  # fmt: skip
    """The real web server on the scheduled script engine, in its own process, with its own home."""
    with tempfile.TemporaryDirectory(prefix="streamchat-webbench-") as tmp:
        home = Path(tmp)
        script_file = home / "reply.md"
        script_file.write_text(script, encoding="utf-8")
        stamps = home / "stamps.jsonl"
        env = {**os.environ, "STREAMCHAT_HOME": str(home), "STREAMCHAT_CONFIG": str(home / "none.toml"),
               "PYTHONUNBUFFERED": "1"}  # fmt: skip
        env.pop("ANTHROPIC_API_KEY", None)
        env.pop("ANTHROPIC_BASE_URL", None)
        command = [sys.executable, __file__, "serve", "--stamps", str(stamps), "--",
                   "--engine", f"script:{script_file}", "--script-chunk", str(chunk),
                   "--script-rate", str(rate),
                   "--max-tokens", str(max_tokens), "--port", "0", *(extra or [])]  # fmt: skip
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        server = Server(_read_url(process, "streamchat web"), process, stamps, home)
        try:
            yield server
        finally:
            server.stop()


def free_port() -> int:
    """A port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        raise SystemExit(serve_main(sys.argv[2:]))
    print(describe(make_reply(80_000)))
