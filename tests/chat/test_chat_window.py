"""The context window's pure functions: exchanges, validity for the API, the token budget's cost."""

from __future__ import annotations

import json
from typing import Any

from streamchat.chat.conversation import ChatMessage
from streamchat.chat.window import TokenCache, exchanges, plan_window, to_api


def user(text: str, **kw: Any) -> ChatMessage:
    return ChatMessage("user", [{"type": "text", "text": text}], **kw)


def assistant(*blocks: dict[str, Any], status: Any = "complete") -> ChatMessage:
    return ChatMessage("assistant", list(blocks), status=status)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool_use(i: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": i, "name": "f", "input": {}}


def result(i: str) -> ChatMessage:
    return ChatMessage("user", [{"type": "tool_result", "tool_use_id": i, "content": "ok"}])


def test_exchanges_group_tool_rounds() -> None:
    history = [
        user("a"),
        assistant(tool_use("t1")),
        result("t1"),
        assistant(text("done")),
        user("b"),
        assistant(text("x")),
    ]
    assert exchanges(history) == [range(0, 4), range(4, 6)]
    assert exchanges([assistant(text("orphan")), user("a")]) == [range(0, 1), range(1, 2)]
    assert exchanges([]) == []


def test_to_api_cleans_partial_turns() -> None:
    history = [
        user("q1"),
        assistant(
            {"type": "thinking", "thinking": "partial", "signature": ""},
            text("Hello  "),
            text(""),
            tool_use("cut"),
            status="interrupted",
        ),
        user("q2"),
        assistant(
            {"type": "thinking", "thinking": "whole", "signature": "sig"},
            text("ends in space "),
            tool_use("t1"),
        ),
        result("t1"),
        assistant(text("   "), status="error"),
        user("q3"),
    ]
    assert to_api(history) == [
        {"role": "user", "content": [text("q1")]},
        {"role": "assistant", "content": [text("Hello")]},
        {"role": "user", "content": [text("q2")]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "whole", "signature": "sig"},
                text("ends in space "),
                tool_use("t1"),
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}, text("q3")],
        },
    ]


def test_to_api_final_assistant_and_orphans() -> None:
    # A complete final assistant turn ending in whitespace is stripped too (the API refuses it).
    assert to_api([user("q"), assistant(text("answer \n"))])[-1] == {
        "role": "assistant",
        "content": [text("answer")],
    }
    # A leading assistant or a tool_result without its tool_use never starts a request.
    assert to_api([assistant(text("hi")), result("gone"), user("q")]) == [
        {"role": "user", "content": [text("q")]}
    ]
    # An unanswered tool_use in a complete turn (no tools available) is dropped, and the empty turn too.
    assert to_api([user("q"), assistant(tool_use("t")), user("r")]) == [
        {"role": "user", "content": [text("q"), text("r")]}
    ]


class Counter:
    """count_tokens stand-in for pure tests: a token per 4 characters of the request JSON."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: list[dict[str, Any]]) -> int:
        self.calls += 1
        return len(json.dumps(messages)) // 4


def chat(turns: int) -> list[ChatMessage]:
    history: list[ChatMessage] = []
    for i in range(turns):
        history += [user(f"question {i} " + "x" * 80), assistant(text(f"answer {i} " + "y" * 200))]
    return history


def test_under_budget_costs_one_count_then_none() -> None:
    counter, cache = Counter(), TokenCache()
    history = chat(3)
    plan = plan_window(history, max_tokens=10_000, counter=counter, cache=cache)
    assert (
        counter.calls == 1
        and plan.dropped == []
        and plan.tokens == counter(to_api(history))
        and not plan.reason
    )
    plan_window(history, max_tokens=10_000, counter=counter, cache=cache)
    assert counter.calls == 2  # the explicit call above; the second plan was cached


def test_over_budget_drops_oldest_keeps_pinned_and_last() -> None:
    counter, cache = Counter(), TokenCache()
    history = chat(12)
    history[2].pinned = True  # the second question: its whole exchange stays
    plan = plan_window(history, max_tokens=300, counter=counter, cache=cache)
    assert plan.tokens is not None and plan.tokens <= 300
    assert 2 in plan.included and 3 in plan.included and 0 in plan.dropped
    assert plan.included[-2:] == [22, 23] and "budget" in plan.reason and plan.dropped_tokens
    assert counter.calls <= 3
    # The next turn, estimated from the last count, costs a single count.
    history += [user("question 12 " + "x" * 80), assistant(text("answer 12 " + "y" * 200))]
    before = counter.calls
    plan = plan_window(history, max_tokens=300, counter=counter, cache=cache)
    assert counter.calls - before == 1 and plan.tokens is not None and plan.tokens <= 300


def test_turn_limit_and_single_huge_exchange() -> None:
    history = chat(5)
    plan = plan_window(history, max_turns=2)
    assert plan.included == [6, 7, 8, 9] and plan.tokens is None and "2 turns" in plan.reason
    counter = Counter()
    plan = plan_window(chat(1), max_tokens=5, counter=counter)
    assert (
        plan.included == [0, 1] and plan.tokens is not None and plan.tokens > 5
    )  # the newest turn always stays


def system(t: str) -> ChatMessage:
    return ChatMessage("system", [text(t)])


def test_system_messages_open_the_exchange_that_follows_them() -> None:
    history = [
        system("S0"), user("a"), assistant(text("x")),
        system("S1"), system("S2"), user("b"), assistant(tool_use("t")), result("t"), assistant(text("y")),
        system("S3"),  # given for the next turn, which has not come yet
    ]  # fmt: skip
    assert exchanges(history) == [range(0, 3), range(3, 10)]
    assert exchanges([user("a"), system("S"), user("b")]) == [range(0, 1), range(1, 3)]
    # They are not turns: the last turn is kept with the instructions given for it, in place.
    plan = plan_window(history, max_turns=1)
    assert plan.included == list(range(3, 10)) and plan.dropped == [0, 1, 2]
    assert to_api([history[i] for i in plan.included]) == [  # after the turn they were given for
        {"role": "user", "content": [text("b")]},
        {"role": "system", "content": [text("S1")]},
        {"role": "system", "content": [text("S2")]},
        {"role": "assistant", "content": [tool_use("t")]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
        {"role": "assistant", "content": [text("y")]},
    ]  # S3 waits for its turn: the API takes a system message only after a user turn
    assert to_api([history[i] for i in plan.included] + [user("c")])[-2:] == [
        {"role": "user", "content": [text("c")]},
        {"role": "system", "content": [text("S3")]},
    ]


def test_a_system_message_is_never_left_without_its_turn() -> None:
    history = [user("a"), assistant(text("x")), system("about b"), user("b"), assistant(text("y")),
               user("c"), assistant(text("z"))]  # fmt: skip
    for turns in (1, 2):
        window = [history[i] for i in plan_window(history, max_turns=turns).included]
        api = to_api(window)
        if any(m["role"] == "system" for m in api):  # only ever right after the turn it was given for
            at = [m["role"] for m in api].index("system")
            assert api[at - 1] == {"role": "user", "content": [text("b")]}
        else:
            assert user("b") not in window
    # Pinning the instruction keeps its whole exchange; by budget it is dropped with its turn.
    pinned = [*history[:2], ChatMessage("system", [text("about b")], pinned=True), *history[3:]]
    assert plan_window(pinned, max_turns=1).included == [2, 3, 4, 5, 6]
    def counter(messages: list[dict[str, Any]]) -> int:
        return len(json.dumps(messages)) // 4

    roomy, tight = (plan_window(history, max_tokens=n, counter=counter) for n in (100, 60))
    assert roomy.included == [2, 3, 4, 5, 6] and tight.included == [5, 6]
    assert roomy.tokens == counter(to_api(history[2:]))  # the instruction's tokens count like any other


def test_to_api_system_messages() -> None:
    # Text blocks only, empty ones left out; system messages alone are nothing to send.
    assert to_api([ChatMessage("system", [text(""), {"type": "image", "source": {}}])]) == []
    assert to_api([system("only an instruction")]) == []
    assert to_api([system("first"), assistant(text("orphan")), user("q")]) == [
        {"role": "user", "content": [text("q")]},
        {"role": "system", "content": [text("first")]},
    ]
    # Between a tool call and its result it moves after the result: the pair stays whole.
    assert to_api([user("q"), assistant(text("look"), tool_use("t")), system("hurry"), result("t")]) == [
        {"role": "user", "content": [text("q")]},
        {"role": "assistant", "content": [text("look"), tool_use("t")]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
        {"role": "system", "content": [text("hurry")]},
    ]
    # Given after the last reply, with no turn of its own in the request (a continuation): it waits.
    assert to_api([user("q"), assistant(text("part")), system("later")]) == [
        {"role": "user", "content": [text("q")]},
        {"role": "assistant", "content": [text("part")]},
    ]
