"""The llama engine's stream readers, fed synthetic pieces cut at every awkward point."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import pytest

from streamchat.api.stream import InputJsonDelta, Part, TextDelta, ThinkingDelta, ToolUseStart
from streamchat.engines.output import (
    CallDetector,
    ReplyText,
    StopSequenceFilter,
    ThinkSplitter,
    ToolCallReader,
    partial_suffix,
    utf8_decoder,
)


def cuts(text: str) -> Iterable[list[str]]:
    """`text` as one piece, as single characters, and cut in two and three at every position."""
    yield [text]
    yield list(text)
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]
        for j in range(i + 1, len(text)):
            yield [text[:i], text[i:j], text[j:]]


def joined(parts: Sequence[Part]) -> tuple[str, str]:
    thinking = "".join(p.thinking for p in parts if isinstance(p, ThinkingDelta))
    text = "".join(p.text for p in parts if isinstance(p, TextDelta))
    return thinking, text


def split_think(pieces: Sequence[str], *, thinking: bool = False) -> list[Part]:
    splitter = ThinkSplitter(thinking=thinking)
    parts: list[Part] = []
    for piece in pieces:
        parts += splitter.feed(piece)
    return parts + splitter.flush()


def kinds_in_order(parts: Sequence[Part]) -> list[str]:
    """The block kinds the parts open, in order (a kind repeated in a row is one block)."""
    out: list[str] = []
    for part in parts:
        kind = type(part).__name__
        if not out or out[-1] != kind:
            out.append(kind)
    return out


@pytest.mark.parametrize("source", ["<think>Let me see.</think>\n\nThe answer is 4.",
                                    "  <think>\nLet me see.\n</think>The answer is 4."])  # fmt: skip
def test_think_splitter_separates_thinking_at_every_cut(source: str) -> None:
    for pieces in cuts(source):
        parts = split_think(pieces)
        assert joined(parts) == ("Let me see.", "The answer is 4."), pieces
        assert kinds_in_order(parts) == ["ThinkingDelta", "TextDelta"], pieces
        assert all((p.thinking if isinstance(p, ThinkingDelta) else p.text) for p in parts)  # type: ignore[union-attr]


def test_think_splitter_streams_thinking_before_it_closes() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<thi") == []
    assert splitter.feed("nk>Step one") == [ThinkingDelta("Step one")]
    assert splitter.feed(", step two </th") == [ThinkingDelta(", step two")]
    assert splitter.feed("ink>Done") == [TextDelta("Done")]


def test_think_splitter_leaves_plain_text_and_late_tags_alone() -> None:
    for source in ["Hello <think> is a tag", "<thin air", "<", "Just text."]:
        for pieces in cuts(source):
            assert joined(split_think(pieces)) == ("", source), pieces


def test_think_splitter_can_start_inside_thinking_and_keeps_an_unclosed_thought() -> None:
    for pieces in cuts("\nHmm.\n</think>\n\nYes."):
        assert joined(split_think(pieces, thinking=True)) == ("Hmm.", "Yes."), pieces
    assert joined(split_think(["<think>Out of tok", "ens  "])) == ("Out of tokens", "")


@pytest.mark.parametrize(("stops", "source", "expected", "hit"), [
    (["END"], "one two END three", "one two ", "END"),
    (["\n\n", "two"], "one two\n\nthree", "one ", "two"),
    (["ab", "b"], "xab", "x", "ab"),
    (["aab"], "aaab", "a", "aab"),  # a held start that fails must release only what cannot begin a match
    (["stop"], "no match, st", "no match, st", None),
    (["é!"], "café!", "caf", "é!"),
])  # fmt: skip
def test_stop_filter_cuts_at_the_first_stop_at_every_cut(
    stops: list[str], source: str, expected: str, hit: str | None
) -> None:
    for pieces in cuts(source):
        stop = StopSequenceFilter(stops)
        shown = ""
        for piece in pieces:
            shown += stop.feed(piece)
            if stop.hit is not None:
                break
        if stop.hit is None:
            shown += stop.flush()
        assert (shown, stop.hit) == (expected, hit), pieces


def test_stop_filter_never_emits_the_start_of_a_stop_sequence() -> None:
    stop = StopSequenceFilter(["</answer>"])
    assert stop.feed("42 </ans") == "42 "
    assert stop.feed("wer") == ""
    assert stop.feed("!") == "</answer!"


def test_partial_suffix() -> None:
    assert partial_suffix("hello wor", ["world"]) == 3
    assert partial_suffix("hello", ["world"]) == 0
    assert partial_suffix("world", ["world"]) == 0  # a whole match is not a partial one


def test_call_detector_recognises_a_call_of_a_known_tool_at_every_cut() -> None:
    source = '{"name": "get_weather", "input": {"city": "Paris"}}'
    for pieces in cuts(source[:30]):
        detector = CallDetector(["get_weather", "now"])
        passed = "".join(detector.feed(p) for p in pieces)
        assert detector.called and passed == "", pieces


@pytest.mark.parametrize("source", ['{"name": "Ada", "age": 3}', "{ not json", "Sunny today."])
def test_call_detector_passes_other_replies_through(source: str) -> None:
    for pieces in cuts(source):
        detector = CallDetector(["get_weather"])
        passed = "".join(detector.feed(p) for p in pieces) + detector.flush()
        assert not detector.called and passed == source, pieces


def read_call(pieces: Sequence[str]) -> tuple[ToolCallReader, list[Part]]:
    reader = ToolCallReader("toolu_test")
    parts: list[Part] = []
    for piece in pieces:
        parts += reader.feed(piece)
    return reader, parts


def test_tool_call_reader_streams_the_input_and_stops_at_its_end() -> None:
    arguments = {"city": "Paris", "note": 'say "hi" {not a brace}', "days": [1, {"x": 2}]}
    source = '{ "name": "get_weather", "input": ' + json.dumps(arguments) + " }  trailing"
    for pieces in [list(source), [source], *([source[:i], source[i:]] for i in range(1, len(source)))]:
        reader, parts = read_call(pieces)
        assert reader.done and reader.name == "get_weather", pieces
        assert parts[0] == ToolUseStart("toolu_test", "get_weather")
        assert all(isinstance(p, InputJsonDelta) for p in parts[1:])
        assert json.loads("".join(p.partial_json for p in parts[1:])) == arguments  # type: ignore[union-attr]
        assert reader.feed("more") == []


def test_tool_call_reader_at_every_cut_of_a_small_call() -> None:
    source = '{"name":"now","input":{"tz":"UTC"}}'
    for pieces in cuts(source):
        reader, parts = read_call(pieces)
        assert reader.done and reader.input_json == '{"tz":"UTC"}', pieces
        assert sum(isinstance(p, ToolUseStart) for p in parts) == 1


def test_reply_text_composes_thinking_detection_and_stops() -> None:
    reply = ReplyText(stops=["STOP"], tool_names=["get_weather"])
    parts = [
        *reply.feed("<think>plan</think>"),
        *reply.feed("Hel"),
        *reply.feed("lo ST"),
        *reply.feed("OP more"),
    ]
    assert joined(parts) == ("plan", "Hello ") and reply.stop_sequence == "STOP"
    assert reply.feed("ignored") == []

    called = ReplyText(tool_names=["get_weather"])
    assert [*called.feed('<think>need data</think>{"name": '), *called.feed('"get_weather", ')] == [
        ThinkingDelta("need data")
    ]
    assert called.called

    plain = ReplyText(tool_names=["get_weather"])
    assert joined([*plain.feed("{"), *plain.feed("}"), *plain.flush()]) == ("", "{}")
    assert not plain.called


def test_utf8_decoder_holds_incomplete_characters() -> None:
    data = "é 🐉 ok".encode()
    for size in (1, 2, 3):
        decode = utf8_decoder().decode
        pieces = [decode(data[i : i + size]) for i in range(0, len(data), size)] + [decode(b"", True)]
        assert "".join(pieces) == "é 🐉 ok"
        assert "\ufffd" not in "".join(pieces)
    decode = utf8_decoder().decode
    assert decode(b"\xf0\x9f") == "" and decode(b"", True) == "\ufffd"  # a reply cut mid-character
