"""What Stop-before-headers costs a reply: the request entered on a helper thread (so interrupt() can
abandon it while it waits for response headers) against entering it on the reply's own thread.

Claim: the helper thread adds nothing a user could notice to the first delta: the time from
`Conversation.send()` to the first text delta is at most 1.2x the inline baseline on the local
server (where a request takes a couple of ms, so any fixed cost shows most).

    .venv/bin/python benchmarks/reply_open.py     # ~20 s; --replies N
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import anthropic

from streamchat.chat.conversation import Conversation, ConversationOptions
from streamchat.chat.events import Delta
from streamchat.chat.reply import Reply
from streamchat.engines.script import ScriptEngine, parse_script
from streamchat.server import ServerThread, create_app


def inline_open(self: Reply, params: dict[str, Any]) -> Any:
    """The baseline: the SDK's stream entered on the reply's thread (Stop must wait for headers)."""
    return self._conv.client.messages.stream(**params).__enter__()


def first_delta(conv: Conversation) -> float:
    start = time.perf_counter()
    reply = conv.send("hello")
    elapsed = 0.0
    for event in reply:
        if isinstance(event, Delta) and not elapsed:
            elapsed = time.perf_counter() - start
    conv.clear()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=300)
    args = parser.parse_args()
    server = ServerThread(create_app(ScriptEngine(parse_script("Hello there, a short reply."))))
    client = anthropic.Anthropic(base_url=server.start(), api_key="local", max_retries=0)
    conv = Conversation(client, ConversationOptions(model="streamchat-script", local=True))
    threaded = Reply._open
    times: dict[str, list[float]] = {"helper thread": [], "inline (baseline)": []}
    try:
        for _ in range(20):  # warm-up: connections, imports
            first_delta(conv)
        for n in range(args.replies * 2):
            name = "helper thread" if n % 2 else "inline (baseline)"
            Reply._open = threaded if n % 2 else inline_open  # type: ignore[method-assign]
            times[name].append(first_delta(conv))
    finally:
        Reply._open = threaded  # type: ignore[method-assign]
        client.close()
        server.stop()
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, median in medians.items():
        print(f"send() to first delta, {name:<18} median {median:.2f} ms over {args.replies} replies")
    ratio = medians["helper thread"] / medians["inline (baseline)"]
    print(f"ratio {ratio:.3f} (target <= 1.2)")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
