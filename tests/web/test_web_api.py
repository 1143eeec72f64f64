"""The JSON API: bad input gets a clear error and changes nothing; conversations are listed, renamed,
searched, exported, pinned, undone, regenerated and edited through the store the terminal uses."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from web_harness import read_events

from streamchat.chat.conversation import Conversation, ConversationOptions
from streamchat.render import render_html

TWO = {"replies": ["First **answer**.", "Second answer.", "Third answer."]}


def chat(client: Any, text: str, cid: str | None = None) -> dict[str, Any]:
    """Send and read the reply to its end."""
    if cid is None:
        started = client.post("/api/conversations", json={"text": text})
    else:
        started = client.post(f"/api/conversations/{cid}/messages", json={"text": text})
    assert started.status_code in (201, 202), started.text
    data = dict(started.json())
    data["events"] = read_events(client, data["run_id"])
    return data


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["type"] == "error" and body["error"]["message"]
    return response.status_code, body["error"]["type"]


def test_bad_input_is_a_clear_error_and_changes_nothing(web: Any) -> None:
    server = web()
    client = server.client()
    cid = chat(client, "hello")["conversation_id"]
    before = server.store.load(cid).messages
    cases = [
        client.post("/api/conversations", json={"text": "   "}),
        client.post("/api/conversations", json={"text": 42}),
        client.post("/api/conversations", content=b"{not json", headers={"content-type": "application/json"}),
        client.post("/api/conversations", content=b"[1, 2]", headers={"content-type": "application/json"}),
        client.post(f"/api/conversations/{cid}/messages", json={"text": ""}),
        client.post(f"/api/conversations/{cid}/messages", json={}),
        client.post(f"/api/conversations/{cid}/pin", json={"index": "x", "pinned": True}),
        client.post(f"/api/conversations/{cid}/pin", json={"index": 99, "pinned": True}),
        client.patch(f"/api/conversations/{cid}", json={"title": "  "}),
        client.patch(f"/api/conversations/{cid}", json={"thinking": "yes"}),
        client.patch(f"/api/conversations/{cid}", json={"persona": "nobody"}),
        client.get(f"/api/conversations/{cid}/export?format=pdf"),
        client.get("/api/conversations?limit=ten"),
    ]
    assert [error_of(r) for r in cases] == [(400, "invalid_request_error")] * len(cases)
    body = b'{"text": "' + b"x" * (2 << 20) + b'"}'
    too_big = client.post(
        f"/api/conversations/{cid}/messages", content=body, headers={"content-type": "application/json"}
    )
    assert error_of(too_big) == (413, "request_too_large")
    for response in (
        client.get("/api/conversations/nope"),
        client.post("/api/conversations/nope/messages", json={"text": "hi"}),
        client.post("/api/conversations/nope/regenerate"),
        client.patch("/api/conversations/nope", json={"title": "x"}),
        client.delete("/api/conversations/nope"),
        client.get("/api/conversations/nope/export"),
        client.get("/api/runs/nope"),
        client.post("/api/runs/nope/stop"),
        client.post("/api/runs/nope/tools/t1", json={"allow": True}),
        client.get("/api/nothing-here"),
    ):
        assert error_of(response) == (404, "not_found_error"), response.url
    assert server.store.load(cid).messages == before
    assert len(server.store.list_conversations()) == 1 and len(server.engine.runs) == 1


def test_terminal_conversations_show_and_continue_in_the_web(web: Any) -> None:
    server = web(TWO)
    # The terminal's way: a Conversation over the real SDK, saved in the same store.
    sdk = anthropic.Anthropic(api_key="local", base_url=server.url, max_retries=0)
    conv = Conversation(sdk, ConversationOptions(model="streamchat-script", local=True), server.store)
    assert conv.send("from the terminal").wait().status == "complete"
    sdk.close()
    client = server.client()
    listed = client.get("/api/conversations").json()["conversations"]
    assert [(c["id"], c["title"]) for c in listed] == [(conv.id, "from the terminal")]
    shown = client.get(f"/api/conversations/{conv.id}").json()
    assert [(a["role"], a["index"], a["status"]) for a in shown["articles"]] == [
        ("user", 0, "complete"), ("assistant", 1, "complete")]  # fmt: skip
    assert shown["articles"][1]["html"] == render_html("First **answer**.")
    chat(client, "from the web", conv.id)
    again = Conversation.resume(sdk, server.store, conv.id)  # the terminal's -c sees the web's reply
    assert [m.content[0]["text"] for m in again.messages] == [
        "from the terminal", "First **answer**.", "from the web", "Second answer."]  # fmt: skip


def test_list_is_newest_first_and_search_finds_titles(web: Any) -> None:
    server = web(TWO)
    client = server.client()
    first = chat(client, "apples and pears")["conversation_id"]
    second = chat(client, "bananas")["conversation_id"]
    ids = [c["id"] for c in client.get("/api/conversations").json()["conversations"]]
    assert ids == [second, first]
    found = client.get("/api/conversations", params={"q": "apples"}).json()["conversations"]
    assert [c["id"] for c in found] == [first]
    for query in ('"', "*", "(", "NEAR", "-x", "a OR"):
        assert client.get("/api/conversations", params={"q": query}).status_code == 200


def test_rename_persona_model_thinking(web: Any) -> None:
    server = web(TWO, personas={"pirate": "You answer like a pirate."})
    client = server.client()
    cid = chat(client, "hello")["conversation_id"]
    renamed = client.patch(f"/api/conversations/{cid}", json={"title": "  Greetings  "}).json()
    assert renamed["title"] == "Greetings" and server.store.get_conversation(cid).title == "Greetings"
    persona = client.patch(f"/api/conversations/{cid}", json={"persona": "pirate", "thinking": True}).json()
    assert persona["persona"] == "pirate" and persona["thinking"] is True
    assert server.store.get_conversation(cid).system == "You answer like a pirate."
    chat(client, "again", cid)
    assert server.engine.runs[-1].prompt == "again"
    custom = client.patch(f"/api/conversations/{cid}", json={"system": "Be brief.", "persona": None}).json()
    assert custom["system"] == "Be brief." and custom["persona"] is None
    config = client.get("/api/config").json()
    assert config["personas"] == {"pirate": "You answer like a pirate."} and config["local"] is True
    assert client.get("/api/models").json()["models"][0]["id"] == "streamchat-script"


def test_a_new_chat_starts_with_the_chosen_persona(web: Any) -> None:
    server = web(TWO, personas={"pirate": "Arr."})
    client = server.client()
    started = client.post("/api/conversations", json={"text": "hi", "persona": "pirate", "thinking": False})
    read_events(client, started.json()["run_id"])
    cid = started.json()["conversation_id"]
    assert server.store.get_conversation(cid).system == "Arr."
    assert client.get(f"/api/conversations/{cid}").json()["conversation"]["persona"] == "pirate"


def test_regenerate_edit_undo_and_pin(web: Any) -> None:
    server = web(TWO)
    client = server.client()
    cid = chat(client, "question one")["conversation_id"]
    regenerated = client.post(f"/api/conversations/{cid}/regenerate")
    assert regenerated.status_code == 202 and regenerated.json()["position"] == 1
    read_events(client, regenerated.json()["run_id"])
    messages = server.store.load(cid).messages
    assert [m.content[0]["text"] for m in messages] == ["question one", "First **answer**."]
    edited = client.post(f"/api/conversations/{cid}/edit", json={"text": "question one, edited"})
    assert edited.status_code == 202
    read_events(client, edited.json()["run_id"])
    messages = server.store.load(cid).messages
    assert [m.content[0]["text"] for m in messages] == ["question one, edited", "First **answer**."]
    chat(client, "question two", cid)
    pinned = client.post(f"/api/conversations/{cid}/pin", json={"index": 0, "pinned": True})
    assert pinned.json() == {"index": 0, "pinned": True}
    assert server.store.load(cid).messages[0].pinned is True
    assert client.get(f"/api/conversations/{cid}").json()["articles"][0]["pinned"] is True
    assert client.post(f"/api/conversations/{cid}/undo").json()["undone"] is True
    assert len(server.store.load(cid).messages) == 2
    assert client.post(f"/api/conversations/{cid}/continue").status_code == 409  # the reply is complete


def test_export_markdown_and_json(web: Any) -> None:
    server = web(TWO)
    client = server.client()
    cid = chat(client, "export me")["conversation_id"]
    md = client.get(f"/api/conversations/{cid}/export", params={"format": "md"})
    assert md.headers["content-disposition"].startswith("attachment;")
    assert "export me" in md.text and "First **answer**." in md.text
    exported = client.get(f"/api/conversations/{cid}/export", params={"format": "json"}).json()
    assert exported["id"] == cid
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant"]


def test_messages_outside_the_window_are_marked(web: Any) -> None:
    server = web(TWO, max_turns=1)
    client = server.client()
    cid = chat(client, "one")["conversation_id"]
    chat(client, "two", cid)
    articles = client.get(f"/api/conversations/{cid}").json()["articles"]
    assert [a["in_window"] for a in articles] == [False, False, True, True]


@pytest.mark.parametrize("path", ["/", "/c/some-id"])
def test_the_page_is_served(web: Any, path: str) -> None:
    response = web().client().get(path)
    assert response.status_code == 200 and '<textarea id="message"' in response.text
    assert response.headers["cache-control"] == "no-cache"
