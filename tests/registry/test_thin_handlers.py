"""Registry's event handlers are thin (issue 12): they parse with the consumer contracts and call one use case of
``app/``; SQL, repositories, audit and outbox writes live in ``app/`` and ``db/``."""

from __future__ import annotations

import ast
from pathlib import Path

import services.registry.events as events_pkg

EVENTS = Path(events_pkg.__file__).parent
# what a handler module may import: its contracts, the use cases, the consumer's types, pydantic for batch parsing
ALLOWED_PREFIXES = (
    "__future__",
    "typing",
    "collections.abc",
    "pydantic",
    "sqlalchemy.ext.asyncio",
    "services.registry.app",
    "services.registry.events",
    "shared.events.consumer",
    "shared.events.envelope",
    "shared.events.agency",
)


def _imports(tree: ast.Module) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _handler_modules() -> list[Path]:
    return sorted(p for p in EVENTS.glob("*handlers.py"))


def test_handler_modules_import_no_sql_repository_or_writer() -> None:
    assert _handler_modules(), "no handler module found"
    for path in _handler_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad = [m for m in _imports(tree) if not m.startswith(ALLOWED_PREFIXES)]
        assert bad == [], f"{path.name} imports {bad}: move the work into app/ use cases and db/ repositories"
        sql = [n.value[:40] for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and any(k in n.value.upper() for k in ("SELECT ", "INSERT ", "UPDATE ", "DELETE "))]
        assert sql == [], f"{path.name} holds SQL text {sql}"


def test_each_handler_calls_one_use_case() -> None:
    for path in _handler_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in tree.body:
            if isinstance(fn, ast.AsyncFunctionDef) and fn.name.startswith("on_"):
                awaits = [n for n in ast.walk(fn) if isinstance(n, ast.Await)]
                assert len(awaits) == 1, f"{path.name}:{fn.name} awaits {len(awaits)} calls, not one use case"
