"""The house layout (issue 12, docs/architecture.md), asserted over the source with ``ast``.

Every service has the same shape: ``api/`` (routers), ``app/`` (use cases), ``domain/`` (pure logic),
``db/`` (models and repositories), ``events/`` (``contracts.py``, ``handlers.py``), ``migrations/``; nothing
else at its root but ``__init__.py``, ``main.py``, ``config.py``, ``demo.py`` and ``fake_*.py``. Imports
point one way: ``api`` → ``app`` → ``domain``/``db``; no service imports another; ``shared`` names no service.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p for p in (ROOT / "services").iterdir() if p.is_dir() and (p / "__init__.py").exists())
SERVICE_NAMES = [p.name for p in SERVICES]

ROOT_MODULES_ALLOWED = {"__init__.py", "main.py", "config.py", "demo.py"}
REQUIRED = ("api", "app", "domain", "db", "events/contracts.py", "events/handlers.py", "migrations")
IO_LIBRARIES = frozenset(
    {"sqlalchemy", "asyncpg", "aiokafka", "httpx", "fastapi", "starlette", "openpyxl", "requests", "socket",
     "subprocess"}
)


def _modules(base: Path) -> Iterator[Path]:
    for path in sorted(base.rglob("*.py")):
        if "migrations" in path.relative_to(base).parts[:1] or "__pycache__" in path.parts:
            continue
        yield path


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (absolute names; relative imports resolved), with its line number."""
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from services.x import api`` imports the submodule api
                yield node.lineno, f"{module}.{alias.name}"


def _violations(paths: list[Path], bad: object) -> list[str]:
    found = []
    for path in paths:
        for line, module in _imports(path):
            reason = bad(module)  # type: ignore[operator]
            if reason:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({reason})")
    return sorted(set(found))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_service_has_the_house_layout(service: str) -> None:
    base = ROOT / "services" / service
    missing = [item for item in REQUIRED if not (base / item).exists()]
    strays = sorted(
        p.name
        for p in base.iterdir()
        if p.suffix == ".py" and p.name not in ROOT_MODULES_ALLOWED and not p.name.startswith("fake_")
    )
    assert not missing and not strays, f"{service}: missing {missing}; modules not allowed at the root: {strays}"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_inner_layers_do_not_import_api(service: str) -> None:
    base = ROOT / "services" / service
    api = f"services.{service}.api"
    paths = [p for layer in ("db", "domain", "app") for p in _modules(base / layer)] if base.exists() else []

    def bad(module: str) -> str | None:
        return "db/, domain/ and app/ never import api/" if module == api or module.startswith(api + ".") else None

    assert _violations(paths, bad) == []


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_domain_does_no_io(service: str) -> None:
    paths = list(_modules(ROOT / "services" / service / "domain"))

    def bad(module: str) -> str | None:
        return "I/O library in domain/" if module.split(".")[0] in IO_LIBRARIES else None

    assert _violations(paths, bad) == []


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_no_service_imports_another(service: str) -> None:
    paths = list(_modules(ROOT / "services" / service))
    others = [n for n in SERVICE_NAMES if n != service]

    def bad(module: str) -> str | None:
        parts = module.split(".")
        return "another service" if len(parts) > 1 and parts[0] == "services" and parts[1] in others else None

    assert _violations(paths, bad) == []


def test_shared_names_no_service() -> None:
    paths = list(_modules(ROOT / "shared"))

    def bad(module: str) -> str | None:
        return "shared/ imports services" if module.split(".")[0] == "services" else None

    assert _violations(paths, bad) == []


def test_the_checker_sees_relative_and_submodule_imports() -> None:
    """The import walker resolves what the rules are about (so the tests above can fail)."""
    probe = ROOT / "services" / "registry" / "domain" / "probe.py"  # not written: the source is passed in
    source = "from ..api import schemas\nfrom services.finance import store\nimport sqlalchemy.orm\n"
    found = [m for _, m in _imports(probe, source)]
    assert "services.registry.api" in found
    assert "services.registry.api.schemas" in found
    assert "services.finance.store" in found
    assert "sqlalchemy.orm" in found
