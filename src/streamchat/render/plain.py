"""`--no-markdown` output: the reply's text as it arrives, with the renderer's interface."""

from __future__ import annotations

from collections.abc import Callable


class FedText:
    """Everything fed to a renderer, joined lazily (appending stays O(1) per chunk)."""

    def __init__(self) -> None:
        self._chunks: list[str] = []

    def append(self, chunk: str) -> None:
        self._chunks.append(chunk)

    @property
    def value(self) -> str:
        """The text so far."""
        if len(self._chunks) > 1:
            self._chunks[:] = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def ends_line(self) -> bool:
        """True when nothing was fed or the text ends with a newline."""
        return not self._chunks or self._chunks[-1].endswith("\n")


class PlainRenderer:
    """Writes each chunk as soon as it is fed; no Markdown, no cursor movement."""

    def __init__(
        self,
        write: Callable[[str], None],
        width: int = 80,
        height: int = 24,
        *,
        max_fps: float = 30.0,
        code_theme: str = "monokai",
    ) -> None:
        """Same arguments as TerminalRenderer; only `write` is used."""
        self._write = write
        self._fed = FedText()
        self._done = False

    @property
    def text(self) -> str:
        """Everything fed so far, as fed."""
        return self._fed.value

    def feed(self, chunk: str, now: float | None = None) -> None:
        """Write `chunk` now."""
        if self._done:
            raise RuntimeError("feed() after finish() or abort()")
        if chunk:
            self._fed.append(chunk)
            self._write(chunk)

    def tick(self, now: float | None = None) -> None:
        """Nothing to repaint: every chunk is written when it is fed."""

    def finish(self) -> None:
        """End the reply on a line of its own, so that what follows starts at the left margin."""
        if not self._done:
            self._done = True
            if not self._fed.ends_line():
                self._write("\n")

    def abort(self) -> None:
        """End an interrupted reply, like finish()."""
        self.finish()

    def resize(self, width: int, height: int) -> None:
        """Plain text does not depend on the terminal's size."""
