"""A model of what the page does with the streamed HTML pieces, as strings (the browser tests hold the
real page to the same result): blocks are appended, a fence's block is held open while its lines go
into its `<code>`, and it is finished when a piece says `end`."""

from __future__ import annotations

from collections.abc import Iterable


def assemble(pieces: Iterable[tuple[str, str, bool]]) -> str:
    """The finished content from (kind, html, end) pieces; fails on pieces the page could not apply."""
    out: list[str] = []
    fence: list[str] | None = None  # [head, line html..., foot] of the open code block
    for kind, html, end in pieces:
        if kind == "blocks":
            assert fence is None, "blocks while a code block is open"
            out.append(html)
        elif kind == "fence":
            assert fence is None, "a code block inside an open one"
            at = html.rindex("</code>")
            fence = [html[:at], html[at:]]
        elif kind == "lines":
            assert fence is not None, "lines with no open code block"
            fence.insert(-1, html)
            if end:
                out.append("".join(fence))
                fence = None
        else:
            raise AssertionError(f"unknown piece {kind!r}")
    assert fence is None, "a code block left open"
    return "".join(out)
