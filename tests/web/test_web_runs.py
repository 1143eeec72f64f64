"""Runs over HTTP: a reply streams as events with consecutive seqs, resumes without gap or duplicate,
stops the engine, refuses a second reply, and is saved as it streams (real server, SDK, SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web_harness import Event, page_html, read_events, wait_until

from streamchat.render import render_html
from streamchat.web import sse

RICH = (Path(__file__).resolve().parents[1] / "e2e" / "scripts" / "rich.md").read_text()


def final_html(events: list[Event]) -> str:
    """What the page ends with in `.content` for a text-only reply."""
    return page_html(events)


def start_reply(client: Any, text: str = "hello") -> dict[str, Any]:
    response = client.post("/api/conversations", json={"text": text})
    assert response.status_code == 201, response.text
    return dict(response.json())


def saved_reply(server: Any, conversation_id: str) -> Any:
    return server.store.load(conversation_id).messages[-1]


@pytest.mark.parametrize("chunk", [1, 4, 0])
def test_streamed_blocks_equal_the_one_shot_render(web: Any, chunk: int) -> None:
    server = web(RICH, chunk=chunk)
    client = server.client()
    started = start_reply(client)
    events = read_events(client, started["run_id"])
    logged = server.logged(started["run_id"])
    assert [e.seq for e in logged] == list(range(1, len(logged) + 1))  # consecutive, from 1
    received = [e.seq for e in events]
    assert received == sorted(set(received))  # in order, none twice
    # A reader that falls behind skips only tails that a later event replaced.
    assert {e.seq for e in logged if e.type != "tail"} <= set(received)
    assert events[0].type == "start" and events[-1].type == "end"
    assert events[-1].data["status"] == "complete"
    assert final_html(events) == render_html(RICH)
    saved = saved_reply(server, started["conversation_id"])
    assert saved.status == "complete" and saved.content[0]["text"] == RICH


def test_tails_are_paced_and_blocks_are_sent_once(web: Any) -> None:
    server = web(RICH, chunk=1)  # one character per delta: ~2,000 deltas
    client = server.client()
    events = read_events(client, start_reply(client)["run_id"])
    deltas = len(RICH)
    tails = [e for e in events if e.type == "tail"]
    assert len(tails) < deltas / 4  # held back to the frame rate, not one per delta
    blocks = [e.data["html"] for e in events if e.type == "blocks"]
    assert len(blocks) == len(set(blocks)) or final_html(events) == render_html(RICH)


def test_resume_after_a_drop_has_no_gap_and_no_duplicate(web: Any) -> None:
    server = web(RICH, chunk=2, rate=400)
    client = server.client()
    run_id = start_reply(client)["run_id"]
    first = read_events(client, run_id, stop=lambda e: e.type == "blocks")  # the connection drops here
    last = first[-1].seq
    assert last is not None
    rest = read_events(client, run_id, last_event_id=last)  # as EventSource reconnects
    assert rest[0].seq == last + 1
    seqs = [e.seq for e in first + rest]
    assert seqs == sorted(set(seqs))
    assert final_html(first + rest) == render_html(RICH)


def test_a_reader_that_falls_behind_gets_one_tail_per_part_in_a_batch(web: Any) -> None:
    server = web(RICH, chunk=1)
    client = server.client()
    run_id = start_reply(client)["run_id"]
    wait_until(lambda: server.web.runs.get(run_id) is not None and not server.web.runs.get(run_id).running)
    events = read_events(client, run_id)  # the whole log in a few reads
    assert final_html(events) == render_html(RICH)
    assert len([e for e in events if e.type == "tail"]) < 10


def test_a_finished_run_answers_no_content_to_a_reconnect(web: Any) -> None:
    server = web("Short.")
    client = server.client()
    run_id = start_reply(client)["run_id"]
    events = read_events(client, run_id)
    again = client.get(f"/api/runs/{run_id}/events", headers={"last-event-id": str(events[-1].seq)})
    assert again.status_code == 204  # EventSource stops reconnecting


def test_a_seq_the_log_does_not_hold_is_gone_not_skipped(web: Any) -> None:
    server = web("Short.")
    client = server.client()
    run_id = start_reply(client)["run_id"]
    read_events(client, run_id)
    gone = read_events(client, run_id, last_event_id=10_000)
    assert [e.type for e in gone] == ["gone"]
    unknown = client.get("/api/runs/nope/events")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


def test_sse_headers_and_heartbeat(web: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.05)
    server = web("Held reply.")
    server.engine.hold.add("hold me")
    client = server.client()
    run_id = start_reply(client, "hold me")["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        lines = response.iter_lines()
        pings = 0
        for line in lines:
            pings += line == ": ping"
            if pings == 3:
                break
    server.engine.release("hold me")
    assert pings == 3


def test_a_second_send_while_a_reply_runs_is_refused(web: Any) -> None:
    server = web("The first reply.")
    server.engine.hold.add("first")
    client = server.client()
    started = start_reply(client, "first")
    server.engine.wait_runs(1)
    second = client.post(f"/api/conversations/{started['conversation_id']}/messages", json={"text": "second"})
    assert second.status_code == 409 and second.json()["error"]["type"] == "conflict_error"
    assert "already running" in second.json()["error"]["message"]
    for action in ("regenerate", "continue", "undo"):
        assert client.post(f"/api/conversations/{started['conversation_id']}/{action}").status_code == 409
    server.engine.release("first")
    events = read_events(client, started["run_id"])
    assert events[-1].data["status"] == "complete"
    texts = [b.get("text") for m in server.store.load(started["conversation_id"]).messages for b in m.content]
    assert texts == ["first", "The first reply."]  # nothing of the refused send was kept


def test_stop_stops_the_engine_and_keeps_the_partial_reply(web: Any) -> None:
    server = web("word " * 2000, chunk=5, rate=200)
    client = server.client()
    started = start_reply(client)
    run_id = started["run_id"]
    seen = read_events(client, run_id, stop=lambda e: e.type == "blocks" or e.data.get("chars", 0) > 40)
    assert server.api.generations_running == 1
    stopped = client.post(f"/api/runs/{run_id}/stop")
    assert stopped.status_code == 202
    wait_until(server.engine_idle, what="the engine to stop")
    (generation,) = server.engine.runs
    assert generation.cancelled
    rest = read_events(client, run_id, last_event_id=seen[-1].seq)
    assert rest[-1].type == "end" and rest[-1].data["status"] == "interrupted"
    saved = saved_reply(server, started["conversation_id"])
    assert saved.status == "interrupted"
    text = saved.content[0]["text"]
    assert 0 < len(text) < len("word " * 2000)
    assert render_html(text) == final_html(seen + rest)  # what the page shows is what was saved
    again = client.get(f"/api/conversations/{started['conversation_id']}").json()
    assert again["run"] is None and again["articles"][-1]["status"] == "interrupted"
    assert again["articles"][-1]["html"] == render_html(text)  # a reload shows exactly that, no more


def test_closing_every_connection_does_not_stop_the_reply(web: Any) -> None:
    server = web(RICH, chunk=3, rate=600)
    client = server.client()
    started = start_reply(client)
    read_events(client, started["run_id"], stop=lambda e: e.type == "tail")  # then the tab closes
    client.close()
    wait_until(lambda: not server.web.runs.get(started["run_id"]).running, timeout=30, what="the run to end")
    saved = saved_reply(server, started["conversation_id"])
    assert saved.status == "complete" and saved.content[0]["text"] == RICH


def test_the_reply_is_saved_while_it_streams(web: Any) -> None:
    server = web("part " * 400, chunk=5, rate=100)
    client = server.client()
    started = start_reply(client)
    cid = started["conversation_id"]

    def saved_text() -> str:
        messages = server.store.load(cid).messages
        return (
            str(messages[-1].content[0].get("text", ""))
            if len(messages) == 2 and messages[-1].content
            else ""
        )

    wait_until(lambda: len(saved_text()) > 20, timeout=10, what="the partial reply in the store")
    assert server.store.load(cid).messages[-1].status == "interrupted"  # until it completes
    assert server.web.runs.get(started["run_id"]).running
    # While it runs, the page gets the messages before the reply and the run to follow.
    shown = client.get(f"/api/conversations/{cid}").json()
    assert shown["run"]["id"] == started["run_id"] and len(shown["articles"]) == 1
    client.post(f"/api/runs/{started['run_id']}/stop")


def test_deleting_a_conversation_while_its_reply_runs(web: Any) -> None:
    server = web("word " * 2000, chunk=5, rate=200)
    client = server.client()
    started = start_reply(client)
    server.engine.wait_runs(1)
    deleted = client.delete(f"/api/conversations/{started['conversation_id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    wait_until(server.engine_idle, what="the engine to stop")
    assert server.store.get_conversation(started["conversation_id"]) is None
    assert client.get(f"/api/conversations/{started['conversation_id']}").status_code == 404
    assert client.delete(f"/api/conversations/{started['conversation_id']}").status_code == 404


def test_tool_calls_wait_for_the_pages_answer(web: Any, tmp_path: Path) -> None:
    from streamchat.chat.tools import ToolSet

    calls: list[int] = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        calls.append(a + b)
        return a + b

    script = {"replies": [
        {"blocks": [{"type": "tool_use", "name": "add", "input": {"a": 2, "b": 3}}]},
        "The sum is 5.",
        {"blocks": [{"type": "tool_use", "name": "add", "input": {"a": 1, "b": 1}}]},
        "Declined, fine.",
    ]}  # fmt: skip
    server = web(script, tools=ToolSet.from_functions([add]))
    client = server.client()
    started = start_reply(client, "add 2 and 3")
    asked = read_events(client, started["run_id"], stop=lambda e: e.type == "tool_ask")
    ask = asked[-1].data
    assert ask["name"] == "add" and calls == []
    assert any(e.type == "input" for e in asked)
    answer = client.post(f"/api/runs/{started['run_id']}/tools/{ask['id']}", json={"allow": True})
    assert answer.status_code == 200
    rest = read_events(client, started["run_id"], last_event_id=asked[-1].seq)
    assert calls == [5]
    result = next(e for e in rest if e.type == "tool_result")
    assert result.data["is_error"] is False and "5" in result.data["html"]
    assert rest[-1].data["status"] == "complete"
    assert "The sum is 5." in final_html(rest)
    # The second call is denied.
    second = client.post(f"/api/conversations/{started['conversation_id']}/messages", json={"text": "again"})
    run_id = second.json()["run_id"]
    asked = read_events(client, run_id, stop=lambda e: e.type == "tool_ask")
    client.post(f"/api/runs/{run_id}/tools/{asked[-1].data['id']}", json={"allow": False})
    rest = read_events(client, run_id, last_event_id=asked[-1].seq)
    denied = next(e for e in rest if e.type == "tool_result")
    assert denied.data["is_error"] is True and calls == [5]
    assert (
        client.post(f"/api/runs/{run_id}/tools/{asked[-1].data['id']}", json={"allow": True}).status_code
        == 409
    )


def test_stop_while_a_tool_call_waits_denies_it(web: Any) -> None:
    from streamchat.chat.tools import ToolSet

    calls: list[str] = []

    def shout(text: str) -> str:
        """Shout."""
        calls.append(text)
        return text.upper()

    script = [{"type": "tool_use", "name": "shout", "input": {"text": "hi"}}]
    server = web(script, tools=ToolSet.from_functions([shout]))
    client = server.client()
    started = start_reply(client)
    asked = read_events(client, started["run_id"], stop=lambda e: e.type == "tool_ask")
    client.post(f"/api/runs/{started['run_id']}/stop")
    rest = read_events(client, started["run_id"], last_event_id=asked[-1].seq)
    assert rest[-1].data["status"] == "interrupted" and calls == []


def test_thinking_and_text_parts(web: Any) -> None:
    script = [
        {"type": "thinking", "thinking": "Let me *think*.\n\nStill thinking."},
        {"type": "text", "text": RICH},
    ]
    server = web(script)
    client = server.client()
    started = start_reply(client)
    events = read_events(client, started["run_id"])
    parts = [e.data for e in events if e.type == "part"]
    assert [p["kind"] for p in parts] == ["thinking", "text"]
    assert 'class="thinking"' in parts[0]["html"]
    assert page_html(events, part=1) == render_html(RICH)
    article = client.get(f"/api/conversations/{started['conversation_id']}").json()["articles"][-1]
    assert article["html"].startswith('<details class="thinking">') and article["html"].endswith(
        render_html(RICH)
    )


def test_usage_events_and_the_end_carry_tokens_and_cost(web: Any) -> None:
    server = web("Counted reply.", chunk=2)
    client = server.client()
    started = start_reply(client)
    events = read_events(client, started["run_id"])
    usage = [e.data for e in events if e.type == "usage"]
    assert usage and usage[0]["input_tokens"] > 0 and usage[0]["cost"] == 0.0
    end = events[-1].data
    assert end["usage"]["output_tokens"] == len("Counted reply.") // 2 and end["cost"] == 0.0
    summary = client.get(f"/api/conversations/{started['conversation_id']}").json()["usage"]
    assert summary["series"] == [{"index": 1, "input_tokens": usage[0]["input_tokens"],
                                  "output_tokens": end["usage"]["output_tokens"], "cost": 0.0}]  # fmt: skip
    assert summary["totals"]["turns"] == 1 and summary["context_tokens"] == usage[0]["input_tokens"]


def test_health_reports_runs_and_generations(web: Any) -> None:
    server = web("Held.")
    server.engine.hold.add("hold")
    client = server.client()
    started = start_reply(client, "hold")
    server.engine.wait_runs(1)
    health = client.get("/api/health").json()
    assert health["runs_running"] == 1 and health["generations_running"] == 1
    server.engine.release("hold")
    read_events(client, started["run_id"])
    wait_until(lambda: client.get("/api/health").json()["generations_running"] == 0)
    assert json.dumps(client.get("/api/health").json())


def test_continue_finishes_an_interrupted_reply_in_the_same_message(web: Any) -> None:
    text = "word " * 300 + "THE END."
    server = web(text, chunk=5, rate=300, max_tokens=4096)
    client = server.client()
    started = start_reply(client)
    cid = started["conversation_id"]
    read_events(client, started["run_id"], stop=lambda e: e.data.get("chars", 0) > 100)
    client.post(f"/api/runs/{started['run_id']}/stop")
    read_events(client, started["run_id"])
    partial = saved_reply(server, cid).content[0]["text"]
    assert saved_reply(server, cid).status == "interrupted" and not partial.endswith("THE END.")
    continued = client.post(f"/api/conversations/{cid}/continue")
    assert continued.status_code == 202 and continued.json()["position"] == 1
    events = read_events(client, continued.json()["run_id"])
    assert events[-1].data["status"] == "complete"
    assert [e.data["part"] for e in events if e.type == "part"] == [0]  # the same text part goes on
    assert final_html(events) == render_html(text)
    messages = server.store.load(cid).messages
    assert len(messages) == 2 and messages[1].status == "complete" and messages[1].content[0]["text"] == text
