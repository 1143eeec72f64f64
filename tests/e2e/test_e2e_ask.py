"""`streamchat ask` as a whole program: plain output, --json, --events, stdin, errors."""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
from pathlib import Path

from term import SCRIPTS, run, script

HELLO = (SCRIPTS.parent.parent / "fixtures" / "hello.md").read_text()


def test_ask_prints_plain_text_when_not_a_terminal(env: dict[str, str]) -> None:
    done = run(["ask", "--engine", script("rich.md"), "--script-chunk", "3", "Report please"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip("\n") == (SCRIPTS / "rich.md").read_text().rstrip("\n")
    assert "\x1b" not in done.stdout
    assert done.stderr == ""


def test_ask_reads_the_question_from_stdin(env: dict[str, str], home: Path) -> None:
    done = run(["ask", "--engine", script("turns.json")], env, input="What is first?\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "First answer: alpha."
    # saved as a conversation, titled by the question
    with sqlite3.connect(home / "streamchat.db") as db:
        titles = [r[0] for r in db.execute("SELECT title FROM conversations")]
    assert titles == ["What is first?"]


def test_ask_no_save_leaves_the_store_empty(env: dict[str, str]) -> None:
    done = run(["ask", "--no-save", "--engine", script("turns.json"), "hi"], env)
    assert done.returncode == 0, done.stderr
    listed = run(["history"], env)
    assert listed.stdout.strip() == "no saved conversations"


def test_ask_json_prints_the_final_message(env: dict[str, str]) -> None:
    done = run(["ask", "--json", "--engine", script("turns.json"), "hi"], env)
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout)
    assert message["content"] == [{"type": "text", "text": "First answer: alpha."}]
    assert message["model"] == "streamchat-script"
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] > 0 and message["usage"]["input_tokens"] > 0


def test_ask_events_prints_every_raw_event_as_a_json_line(env: dict[str, str]) -> None:
    done = run(["ask", "--events", "--engine", script("turns.json"), "hi"], env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["type"] == "message_start"
    assert events[-1]["type"] == "message_stop"
    types = [e["type"] for e in events]
    assert "content_block_start" in types and "message_delta" in types
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "First answer: alpha."


def test_ask_connection_refused_fails_with_one_line(env: dict[str, str]) -> None:
    done = run(["ask", "--base-url", "http://127.0.0.1:1", "--model", "m", "hi"], env)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("streamchat:")


def test_ask_midstream_error_keeps_partial_text_and_fails(env: dict[str, str]) -> None:
    done = run(["ask", "--engine", script("error.json"), "hi"], env)
    assert done.returncode == 1
    assert "Partial before the failure." in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
    assert "the engine broke" in done.stderr and "Traceback" not in done.stderr


def test_ask_events_errors_are_one_line_after_the_events_that_arrived(env: dict[str, str]) -> None:
    refused = run(["ask", "--events", "--base-url", "http://127.0.0.1:1", "--model", "m", "hi"], env)
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "127.0.0.1:1" in refused.stderr
    broken = run(["ask", "--events", "--engine", script("error.json"), "hi"], env)
    assert broken.returncode == 1
    assert json.loads(broken.stdout.splitlines()[0])["type"] == "message_start"
    assert len(broken.stderr.strip().splitlines()) == 1
    assert "the engine broke" in broken.stderr and "Traceback" not in broken.stderr


def test_ask_with_an_empty_question_is_a_usage_error(env: dict[str, str]) -> None:
    done = run(["ask", "--engine", script("turns.json")], env, input="  \n")
    assert done.returncode == 2
    assert "nothing to ask" in done.stderr


def test_ask_unknown_persona_and_config_persona(env: dict[str, str], home: Path) -> None:
    done = run(["ask", "--persona", "pirate", "--engine", script("turns.json"), "hi"], env)
    assert done.returncode == 2 and "unknown persona" in done.stderr
    (home / "config.toml").write_text('[personas]\npirate = "Talk like a pirate."\n')
    done = run(["ask", "--persona", "pirate", "--json", "--engine", script("turns.json"), "hi"], env)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(home / "streamchat.db") as db:
        systems = [r[0] for r in db.execute("SELECT system FROM conversations")]
    assert systems == ["Talk like a pirate."]


def test_models_lists_the_local_model(env: dict[str, str]) -> None:
    done = run(["models", "--engine", script("turns.json")], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "streamchat-script"


class Overloaded(http.server.BaseHTTPRequestHandler):
    """Every request: 529 overloaded_error, retry right away."""

    hits = 0

    def do_POST(self) -> None:
        Overloaded.hits += 1
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        self.send_response(529)
        self.send_header("content-type", "application/json")
        self.send_header("retry-after-ms", "10")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_overloaded_says_the_sdk_retried(env: dict[str, str]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = run(["ask", "--base-url", url, "--model", "m", "hi"], {**env, "ANTHROPIC_API_KEY": "k"})
    finally:
        server.shutdown()
    assert done.returncode == 1
    assert Overloaded.hits == 3  # the first try and the SDK's two retries
    (line,) = done.stderr.strip().splitlines()
    assert "overloaded" in line and "529" in line and "after 2 automatic retries by the SDK" in line
