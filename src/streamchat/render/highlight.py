"""Syntax highlighting of code one line at a time, carrying the lexer's state from line to line.

A streamed code fence is committed to scrollback line by line, so the highlighting of a line must
never depend on lines that come after it, and the finished fence must look exactly as if it had been
highlighted in one go. `LineHighlighter` gives both by construction: the one-shot render highlights
the lines of a finished fence through the same object, in the same order, as the stream does.

Each line is lexed on its own, starting from the state stack the previous line ended in, so a line
costs the same however long the fence is. For pygments' `RegexLexer`s (most languages) the state
stack is carried exactly; `ExtendedRegexLexer`s carry it through pygments' own `LexerContext`; other
lexers (hand-written ones such as JSON's) lex each line from their initial state. Known limit: a
construct that a lexer matches with one regular expression spanning several lines (a `/* ... */`
comment in some lexers, a Python docstring as `String.Doc`) is highlighted by the rules that apply
line by line (as code, or as an ordinary string) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from pygments.lexer import (  # type: ignore[import-untyped]
    ExtendedRegexLexer,
    LexerContext,
    RegexLexer,
)
from pygments.lexers import find_lexer_class_by_name  # type: ignore[import-untyped]
from pygments.lexers.special import TextLexer  # type: ignore[import-untyped]
from pygments.token import Error, Text, Whitespace, _TokenType  # type: ignore[import-untyped]
from pygments.util import ClassNotFound  # type: ignore[import-untyped]

TokenType = Any  # pygments' _TokenType (pygments ships no type information)
LexedLine = list[tuple[TokenType, str]]

_MAX_EMPTY_MATCHES = 64  # a rule table that keeps matching nothing would otherwise loop forever


@lru_cache(maxsize=64)
def _lexer_class(language: str) -> type[Any]:
    try:
        return find_lexer_class_by_name(language or "text")  # type: ignore[no-any-return]
    except ClassNotFound:
        return TextLexer  # type: ignore[no-any-return]


def _transition(stack: list[str], new_state: Any) -> None:
    """Apply a pygments state transition (push, "#pop", "#push", or pop n) to `stack`."""
    if isinstance(new_state, tuple):
        for state in new_state:
            if state == "#pop":
                if len(stack) > 1:
                    stack.pop()
            elif state == "#push":
                stack.append(stack[-1])
            else:
                stack.append(state)
    elif isinstance(new_state, int):
        # Negative: pop that many, always keeping the bottom state.
        del stack[max(1, len(stack) + new_state) :]
    elif new_state == "#push":
        stack.append(stack[-1])


def _lex_regex_line(lexer: Any, line: str, stack: list[str]) -> tuple[LexedLine, list[str]]:
    """Lex one line (ending in "\\n") with a `RegexLexer`'s rule table, from and to a state stack."""
    table = lexer._tokens  # the compiled rule table pygments builds for every RegexLexer class
    stack = list(stack)
    rules = table[stack[-1]]
    out: LexedLine = []
    position = 0
    empty_matches = 0
    while position < len(line):
        for match_at, action, new_state in rules:
            match = match_at(line, position)
            if match is None:
                continue
            if action is not None:
                if type(action) is _TokenType:
                    out.append((action, match.group()))
                else:
                    out.extend((kind, value) for _, kind, value in action(lexer, match))
            empty_matches = empty_matches + 1 if match.end() == position else 0
            position = match.end()
            if new_state is not None:
                _transition(stack, new_state)
                rules = table[stack[-1]]
            if empty_matches > _MAX_EMPTY_MATCHES:
                out.append((Error, line[position]))
                position += 1
                empty_matches = 0
            break
        else:
            if line[position] == "\n":
                stack = ["root"]  # as pygments does: an unmatched newline resets the state
                rules = table["root"]
                out.append((Whitespace, "\n"))
            else:
                out.append((Error, line[position]))
            position += 1
    return out, stack


def _plain_tokens(tokens: Iterable[tuple[int, TokenType, str]]) -> LexedLine:
    return [(kind, value) for _, kind, value in tokens]


class LineHighlighter:
    """Lexes the lines of one code block in order; each line's tokens depend only on earlier lines."""

    def __init__(self, language: str) -> None:
        """Highlight as `language` (a pygments alias such as "python"; unknown names get plain text)."""
        cls = _lexer_class(language.lower())
        # Keep code exactly as written: the fence has already decided what its lines are.
        self._lexer: Any = cls(stripnl=False, stripall=False, ensurenl=False)
        self._stack: list[str] = ["root"]
        self._lex: Callable[[str, list[str]], tuple[LexedLine, list[str]]] = self._pick_lex()

    def _pick_lex(self) -> Callable[[str, list[str]], tuple[LexedLine, list[str]]]:
        lexer = self._lexer
        if isinstance(lexer, ExtendedRegexLexer):
            return self._lex_extended
        if isinstance(lexer, RegexLexer):
            if type(lexer).get_tokens_unprocessed is RegexLexer.get_tokens_unprocessed:
                return lambda line, stack: _lex_regex_line(lexer, line, stack)
            return self._lex_overridden
        return self._lex_stateless

    def _lex_extended(self, line: str, stack: list[str]) -> tuple[LexedLine, list[str]]:
        context = LexerContext(line, 0, stack=list(stack))
        tokens = _plain_tokens(self._lexer.get_tokens_unprocessed(context=context))
        return tokens, list(context.stack)

    def _lex_overridden(self, line: str, stack: list[str]) -> tuple[LexedLine, list[str]]:
        # The lexer post-processes RegexLexer's tokens (C's type names, say): its tokens, our state.
        tokens, after = _lex_regex_line(self._lexer, line, stack)
        try:
            return _plain_tokens(self._lexer.get_tokens_unprocessed(line, stack=tuple(stack))), after
        except TypeError:  # an override without the `stack` argument
            return tokens, after

    def _lex_stateless(self, line: str, stack: list[str]) -> tuple[LexedLine, list[str]]:
        return _plain_tokens(self._lexer.get_tokens_unprocessed(line)), stack

    def _tokens(self, line: str) -> tuple[LexedLine, list[str]]:
        tokens, stack = self._lex(line + "\n", self._stack)
        # Drop the newline we added: rows are drawn per line.
        while tokens and tokens[-1][1].endswith("\n"):
            kind, value = tokens.pop()
            if value[:-1]:
                tokens.append((kind, value[:-1]))
                break
        return tokens, stack

    def push(self, line: str) -> LexedLine:
        """Lex the next line (without its newline) and move past it."""
        tokens, self._stack = self._tokens(line)
        return tokens

    def peek(self, line: str) -> LexedLine:
        """Lex `line` as the next line without moving past it (for a line still being written)."""
        return self._tokens(line)[0]


def plain_line(line: str) -> LexedLine:
    """A line as a single token of plain text."""
    return [(Text, line)]
