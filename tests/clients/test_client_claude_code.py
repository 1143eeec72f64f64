"""Claude Code (npm `@anthropic-ai/claude-code`, from clients/claude_code's lock file), unchanged,
against a streamchat server on 127.0.0.1: `claude -p ... --output-format stream-json --verbose`."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from client_harness import HERE, RequestLog, npm_ci, quiet_env
from server_harness import API_KEY, wait_until

from streamchat.api.request import MessagesRequest

PROJECT = HERE / "claude_code"
CLAUDE = PROJECT / "node_modules" / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"
PROOF = "streamchat-proof-42"


@pytest.fixture(scope="module")
def claude() -> Path:
    """The native `claude` binary, which the package's postinstall copies over its placeholder."""
    npm_ci(PROJECT)
    assert CLAUDE.exists(), f"{CLAUDE} is missing: npm ci did not install Claude Code"
    with CLAUDE.open("rb") as binary:
        magic = binary.read(4)
    assert magic == b"\x7fELF", "bin/claude.exe is still the placeholder: the postinstall script did not run"
    return CLAUDE


Lines = list[dict[str, Any]]


Done = subprocess.CompletedProcess[str]


def run_claude(claude: Path, url: str, prompt: str, workdir: Path, *extra: str, timeout: float = 240,
               env: dict[str, str] | None = None) -> tuple[Lines, Done]:  # fmt: skip
    """`claude -p PROMPT --output-format stream-json --verbose`; its JSON lines and the process."""
    env = {**quiet_env(url, API_KEY, workdir.parent / "home"), **(env or {})}
    command = [str(claude), "-p", prompt, "--output-format", "stream-json", "--verbose", *extra]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return lines, done


def tool_results(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        if line.get("type") == "user":
            found += [
                b
                for b in line["message"]["content"]
                if isinstance(b, dict) and b.get("type") == "tool_result"
            ]
    return found


def test_agent_loop_runs_a_scripted_bash_call(claude: Path, serve: Any, tmp_path: Path) -> None:
    """The script asks for a Bash call; Claude Code runs it for real, sends the tool_result back, and
    prints the final answer of the second reply."""
    command = f"echo {PROOF} | tee proof.txt"
    script = {"replies": [
        [{"type": "text", "text": "I'll run it."},
         {"type": "tool_use", "id": "toolu_01ScriptedBash", "name": "Bash",
          "input": {"command": command, "description": "Write the proof file"}}],
        [{"type": "text", "text": "Done: the command wrote the proof file."}],
    ]}  # fmt: skip
    engine = RequestLog(script)
    served = serve(engine=engine)
    workdir = tmp_path / "work"
    workdir.mkdir()

    lines, done = run_claude(claude, served.url, "Write the proof file.", workdir, "--allowedTools", "Bash")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (workdir / "proof.txt").read_text().strip() == PROOF  # the command really ran
    results = tool_results(lines)
    assert results and results[0]["tool_use_id"] == "toolu_01ScriptedBash"
    assert PROOF in json.dumps(results[0]["content"])
    final = lines[-1]
    assert final["type"] == "result" and final["subtype"] == "success" and not final["is_error"]
    assert final["result"] == "Done: the command wrote the proof file."
    # what reached the server: Claude Code's system-role message, its tools, then the real tool_result
    first, answered = engine.requests[0], engine.requests[-1]
    assert any(m.role == "system" for m in first.messages)
    assert {"Bash", "Read", "Edit"} <= {t["name"] for t in first.tools}
    sent = [b for m in answered.messages for b in m.content if b.get("type") == "tool_result"]
    assert sent and sent[-1]["tool_use_id"] == "toolu_01ScriptedBash" and PROOF in json.dumps(sent[-1])
    assert served.idle()


def claude_code_request(engine: RequestLog) -> MessagesRequest:
    """The first main-loop request Claude Code sent (system prompt, tools, a system-role message)."""
    for request in engine.requests:
        if request.tools:
            return request
    raise AssertionError("Claude Code sent no request with tools")


@pytest.mark.timeout(1200)
def test_plain_prompt_on_the_builtin_model(claude: Path, serve: Any, tmp_path: Path) -> None:
    """`claude -p` on SmolLM2-135M in Claude Code's lean setup (`--tools ""`, a short
    `--system-prompt`), to a successful result. Claude Code's default first request is measured with
    the engine's exact count (the script engine records it); it needs `--n-ctx` above the default
    8192 (the default setup itself is answered in the next test)."""
    from streamchat.engines.llama import LlamaEngine

    recorder = RequestLog("Recorded.")
    recorded = serve(engine=recorder)
    workdir = tmp_path / "work"
    workdir.mkdir()
    prompt = "Reply with one short sentence: what is a unit test?"
    lean = ("--tools", "", "--system-prompt", "You are a helpful assistant. Answer in one sentence.")
    run_claude(claude, recorded.url, prompt, workdir)
    default = claude_code_request(recorder)
    run_claude(claude, recorded.url, prompt, workdir, *lean)
    minimal = recorder.requests[-1]

    engine = LlamaEngine(n_ctx=N_CTX, seed=3)
    try:
        needed, lean_needed = engine.count_tokens(default), engine.count_tokens(minimal)
        print(f"\nClaude Code's first request: {needed} prompt tokens on SmolLM2 ({len(default.tools)} "
              f"tools); with --tools '' and a short system prompt: {lean_needed}")  # fmt: skip
        assert 8192 < needed < N_CTX - 2048, f"--n-ctx {N_CTX} vs Claude Code's {needed}-token prompt"
        assert not minimal.tools and any(m.role == "system" for m in minimal.messages)
        served = serve(engine=engine)
        started = time.monotonic()
        slow = {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "256", "API_TIMEOUT_MS": "1800000"}  # a 135M model on a CPU
        lines, done = run_claude(claude, served.url, prompt, workdir, *lean, "--max-turns", "1", timeout=900,
                                 env=slow)  # fmt: skip
        print(f"answered in {time.monotonic() - started:.0f} s")
    finally:
        engine.close()
    final = lines[-1] if lines else {}
    assert final.get("type") == "result", done.stdout[-3000:] + done.stderr[-3000:]
    assert final.get("api_error_status") is None and final["subtype"] == "success", final
    assert final["result"].strip(), "the model's reply never arrived"
    assert served.idle()


N_CTX = 16384  # Claude Code's first request is ~12,300 tokens for SmolLM2; 8192 is too small


@pytest.mark.timeout(1500)
def test_default_setup_is_answered_by_the_builtin_model(claude: Path, serve: Any, tmp_path: Path) -> None:
    """Claude Code as installed (its whole system prompt, every tool, the system-role message: ~12k
    tokens) against SmolLM2-135M with `--n-ctx 16384`: its first request is read to the end and
    answered with streamed text. The words are a 135M model's (the README says what it cannot do);
    what is checked is that the real client's default request gets a real reply. Once that reply
    is in, Claude Code is stopped (it would ask for more: the reply runs to the output limit), and
    its open request must leave the server idle."""
    from streamchat.engines.llama import LlamaEngine

    engine = LlamaEngine(n_ctx=N_CTX, seed=3)
    try:
        served = serve(engine=engine)
        workdir = tmp_path / "work"
        workdir.mkdir()
        env = {**quiet_env(served.url, API_KEY, tmp_path / "home"),
               "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "32", "API_TIMEOUT_MS": "1800000"}  # fmt: skip
        command = [str(claude), "-p", "Reply with one short sentence: what is a unit test?",
                   "--output-format", "stream-json", "--verbose"]  # fmt: skip
        started = time.monotonic()
        errors = (tmp_path / "stderr.txt").open("w")  # a file: an unread pipe could fill and block it
        process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=errors, text=True)  # fmt: skip
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        answer: dict[str, Any] | None = None
        seen: list[str] = []
        try:
            while answer is None:
                line = lines.get(timeout=1200)
                if line is None:
                    break
                seen.append(line)
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("type") == "assistant":
                    answer = event["message"]
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
            errors.close()
        print(f"\nClaude Code's default request answered in {time.monotonic() - started:.0f} s")
        assert answer is not None, "".join(seen)[-3000:] + (tmp_path / "stderr.txt").read_text()[-3000:]
        text = "".join(b.get("text", "") for b in answer["content"] if b.get("type") == "text")
        assert text.strip(), answer
        assert answer["usage"]["input_tokens"] > 8192  # the whole default prompt was read
        wait_until(served.idle, 120, "the request Claude Code left open to be dropped")
        assert engine.kv_stats().consistent
    finally:
        engine.close()
