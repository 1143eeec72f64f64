"""The dependency rule of DESIGN.md, read from the source: which part of streamchat imports which.

`cli -> terminal|web|server -> chat|render -> api`; `server -> engines -> api`. `endpoint` is the
edge code both views open their chat with (flags, settings, the endpoint and its local server).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "streamchat"

# What each part may import of the rest ("root" is streamchat/__init__.py: the version).
ALLOWED: dict[str, set[str]] = {
    "root": set(),
    "api": set(),
    "render": set(),
    "config": set(),
    "engines": {"api", "config"},
    "chat": {"api", "config"},
    "server": {"api", "engines", "config"},
    "endpoint": {"config", "engines", "server", "chat"},
    "terminal": {"root", "endpoint", "chat", "render", "config"},
    # `streamchat web` serves the page beside the built-in model's /v1: it starts a server.
    "web": {"root", "endpoint", "chat", "render", "config", "server", "engines"},
    "cli": {"root", "endpoint", "chat", "config", "server", "engines", "terminal", "web"},
}


def part_of(module: str) -> str:
    """`streamchat.web.app` -> `web`; `streamchat` -> `root`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def imports_of(path: Path) -> list[tuple[str, int]]:
    """The streamchat modules a file imports (anywhere in it, lazy imports too), with line numbers."""
    module_parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module_parts[:-1]  # the package a relative import starts from (for __init__: itself)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "streamchat":  # `from .. import x`: x is a part unless it is the version
                found += [(f"streamchat.{a.name}" if a.name != "__version__" else target, node.lineno)
                          for a in node.names]  # fmt: skip
                continue
            found.append((target, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
    return [(name, line) for name, line in found if name == "streamchat" or name.startswith("streamchat.")]


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_is_in_the_table() -> None:
    parts = {part_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"))
             for p in source_files()}  # fmt: skip
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    here = part_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"))
    wrong = [f"line {line}: {name}" for name, line in imports_of(path)
             if part_of(name) != here and part_of(name) not in ALLOWED[here]]  # fmt: skip
    assert not wrong, f"{here} may import only {sorted(ALLOWED[here])}"


def test_the_views_do_not_import_each_other() -> None:
    for view, other in (("terminal", "web"), ("web", "terminal")):
        assert other not in ALLOWED[view]
        for path in (PACKAGE / view).rglob("*.py"):
            assert all(part_of(name) != other for name, _ in imports_of(path)), path
