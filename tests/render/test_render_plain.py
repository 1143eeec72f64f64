"""`--no-markdown`: PlainRenderer writes the text as it comes."""

from __future__ import annotations

from streamchat.render import PlainRenderer, Renderer, TerminalRenderer


def test_plain_renderer_writes_each_chunk_at_once_and_ends_the_line() -> None:
    writes: list[str] = []
    renderer = PlainRenderer(writes.append, 80, 24)
    for chunk in ["# Title", "\n\n**bo", "ld**"]:
        renderer.feed(chunk)
    assert writes == ["# Title", "\n\n**bo", "ld**"]
    renderer.tick()
    renderer.resize(10, 5)
    renderer.finish()
    assert writes[-1] == "\n" and len(writes) == 4
    assert renderer.text == "# Title\n\n**bold**"
    renderer.finish()
    assert len(writes) == 4


def test_both_renderers_have_the_interface_the_repl_drives() -> None:
    renderers: list[Renderer] = [TerminalRenderer(print, 80, 24), PlainRenderer(print)]
    for renderer in renderers:
        for name in ("feed", "tick", "finish", "abort", "resize"):
            assert callable(getattr(renderer, name))
        assert renderer.text == ""
