"""Sampling defaults: what a request leaving settings out gets, and exactly what it asks for otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from streamchat.api.errors import InvalidRequestError
from streamchat.api.request import MessagesRequest, parse_messages_request
from streamchat.engines.sampling import (
    LLAMA_CPP_DEFAULTS,
    SMOLLM2_DEFAULTS,
    Guard,
    model_defaults,
    resolve,
)

BUILTIN_METADATA = {"general.basename": "smollm2", "general.name": "Smollm2 135M 8k Lc100K Mix1 Ep2"}


def request(**body: Any) -> MessagesRequest:
    hello = [{"role": "user", "content": "Hi"}]
    return parse_messages_request({"model": "m", "max_tokens": 8, "messages": hello, **body})


def test_the_builtin_model_gets_its_model_card_settings_and_a_guard() -> None:
    defaults, source = model_defaults(BUILTIN_METADATA)
    assert source == "the SmolLM2 model card"
    settings = resolve(request(), defaults)
    assert (settings.temperature, settings.top_p) == (0.2, 0.9)  # the model card's
    assert settings.guarded and not settings.greedy


def test_suggested_sampling_in_the_gguf_metadata_wins() -> None:
    metadata = {**BUILTIN_METADATA, "general.sampling.temp": "0.6", "general.sampling.top_k": "20",
                "general.sampling.top_p": "0.95", "general.sampling.penalty_repeat": "1.05"}  # fmt: skip
    defaults, source = model_defaults(metadata)
    assert "general.sampling" in source
    assert (defaults.temperature, defaults.top_k, defaults.top_p, defaults.repeat_penalty) == (
        0.6,
        20,
        0.95,
        1.05,
    )
    assert defaults.min_p == LLAMA_CPP_DEFAULTS.min_p  # what the file leaves out: llama.cpp's


def test_another_model_without_suggestions_gets_llama_cpp_defaults() -> None:
    defaults, source = model_defaults(
        {"general.name": "Qwen2.5 0.5B Instruct", "general.sampling.temp": "nan"}
    )
    assert defaults == LLAMA_CPP_DEFAULTS and source == "llama.cpp's defaults"
    assert (defaults.temperature, defaults.top_k, defaults.top_p, defaults.min_p) == (0.8, 40, 0.95, 0.05)


def test_a_request_gets_exactly_what_it_sets() -> None:
    settings = resolve(request(temperature=0.7, top_k=5, top_p=0.5, repeat_penalty=1.3, dry_multiplier=0.8),
                       SMOLLM2_DEFAULTS)  # fmt: skip
    assert (settings.temperature, settings.top_k, settings.top_p) == (0.7, 5, 0.5)
    assert (settings.repeat_penalty, settings.dry_multiplier) == (1.3, 0.8)
    partial = resolve(request(temperature=1.0), SMOLLM2_DEFAULTS)
    assert partial.temperature == 1.0 and partial.top_p == SMOLLM2_DEFAULTS.top_p  # each field on its own


def test_temperature_zero_stays_plain_greedy() -> None:
    greedy = resolve(request(temperature=0), SMOLLM2_DEFAULTS, Guard(repeat_penalty=1.4))
    assert greedy.greedy and not greedy.guarded  # neither the model's guard nor the server's
    asked = resolve(request(temperature=0, repeat_penalty=1.2), SMOLLM2_DEFAULTS)
    assert asked.greedy and asked.repeat_penalty == 1.2  # unless the request asks for one


def test_server_options_set_the_guard_for_requests_that_leave_it_out() -> None:
    served = resolve(request(), SMOLLM2_DEFAULTS, Guard(repeat_penalty=1.0, dry_multiplier=0.5))
    assert (served.repeat_penalty, served.dry_multiplier) == (1.0, 0.5)
    overridden = resolve(request(dry_multiplier=0), SMOLLM2_DEFAULTS, Guard(dry_multiplier=0.5))
    assert overridden.dry_multiplier == 0.0


def test_a_tool_call_is_sampled_without_the_guard() -> None:
    plain = SMOLLM2_DEFAULTS.unguarded()
    assert not plain.guarded and plain.temperature == SMOLLM2_DEFAULTS.temperature


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("repeat_penalty", "high", "valid number"), ("repeat_penalty", 0.5, "greater than or equal to 1"),
     ("repeat_penalty", 3, "less than or equal to 2"), ("dry_multiplier", -1, "greater than or equal to 0"),
     ("dry_multiplier", True, "valid number")],
)  # fmt: skip
def test_bad_guard_values_are_refused_like_the_api_refuses_its_own(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        request(**{field: value})
    assert str(caught.value).startswith(f"{field}: ") and message in str(caught.value)
