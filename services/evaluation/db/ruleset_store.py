"""Rule sets stored versioned in the DB: sync from the YAML files, read back (cached by content hash)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.db.models import RuleSetVersion, backbone
from services.evaluation.events.contracts import RULESET_PUBLISHED, RulesetPublished
from shared.events.outbox import emit

_CACHE: dict[str, Any] = {}  # content_hash → RuleSet
RULESET_SYNC_LOCK = "zjtx.evaluation.rulesets.sync"  # advisory-lock key serialising rule-set upserts


def ruleset_json(rs: Any) -> dict[str, Any]:
    data: dict[str, Any] = rs.model_dump(mode="json")
    return data


def content_hash(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _attr(rs: Any, name: str, default: Any = None) -> Any:
    value = getattr(rs, name, default)
    return getattr(value, "value", value)


def find_cases(rs: Any, directory: Path | None) -> Any:
    """The YAML rule tests of ``rs`` if the rule-set directory ships them (``<id>*case*.yaml`` or a ``cases`` dir)."""
    if directory is None or not directory.exists():
        return None
    rid = str(rs.id)
    found: list[Any] = []
    for path in sorted(directory.rglob("*.y*ml")):
        name = path.name.lower()
        if "case" not in name and "cases" not in {p.lower() for p in path.parts}:
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict):
            target = doc.get("ruleset") or doc.get("ruleset_id") or doc.get("id")
            if target == rid or (target is None and rid.lower() in name):
                found.append({"file": path.name, **doc} if "cases" in doc else {"file": path.name, "cases": doc})
        elif isinstance(doc, list) and rid.lower() in path.stem.lower():
            found.append({"file": path.name, "cases": doc})
    embedded = getattr(rs, "cases", None)
    if embedded:
        found.append({"file": None, "cases": embedded})
    return json.loads(json.dumps(found, default=str, ensure_ascii=False)) if found else None


async def upsert_rulesets(
    session: AsyncSession, rulesets: list[Any], *, directory: Path | None = None, publish: bool = True
) -> list[tuple[str, int, bool]]:
    """Store each rule set as (id, version); identical content is a no-op, changed content a new version.

    Returns (ruleset_id, stored version, created). Emits ruleset.published for new versions.

    Safe under concurrency (service start-up sync and ``demo.load_demo`` run at the same time): the whole
    upsert holds a transaction-scoped advisory lock, so a second writer waits for the first to commit and
    then, under READ COMMITTED, sees its rows (identical content → no-op) instead of colliding on the
    primary key (ruleset_id, version)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": RULESET_SYNC_LOCK})
    out: list[tuple[str, int, bool]] = []
    for rs in rulesets:
        definition = ruleset_json(rs)
        digest = content_hash(definition)
        rid = str(rs.id)
        existing = (
            await session.execute(
                select(RuleSetVersion.version).where(
                    RuleSetVersion.ruleset_id == rid, RuleSetVersion.content_hash == digest
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            out.append((rid, existing, False))
            continue
        latest = (
            await session.execute(select(func.max(RuleSetVersion.version)).where(RuleSetVersion.ruleset_id == rid))
        ).scalar()
        version = (latest or 0) + 1
        await session.execute(
            update(RuleSetVersion).where(RuleSetVersion.ruleset_id == rid).values(is_latest=False)
        )
        jurisdiction = _attr(rs, "jurisdiction")
        row = RuleSetVersion(
            ruleset_id=rid,
            version=version,
            source_version=str(_attr(rs, "version", "")),
            content_hash=digest,
            family=_attr(rs, "family"),
            document_number=_attr(rs, "document_number"),
            title=str(_attr(rs, "title", rid)),
            tier=str(_attr(rs, "tier")),
            level=str(_attr(rs, "level")),
            jurisdiction=str(jurisdiction),
            effective_from=_attr(rs, "effective_from"),
            effective_to=_attr(rs, "effective_to"),
            definition=definition,
            cases=find_cases(rs, directory),
            source_file=getattr(rs, "source_file", None),
            is_latest=True,
        )
        session.add(row)
        await session.flush()
        if publish:
            await emit(
                session,
                backbone,
                RULESET_PUBLISHED,
                str(jurisdiction),
                RulesetPublished(
                    ruleset_id=rid, version=version, tier=row.tier, jurisdiction=row.jurisdiction,
                    effective_from=row.effective_from, effective_to=row.effective_to,
                ),
                regioncode=str(jurisdiction) if len(str(jurisdiction)) == 6 else None,
            )
        _CACHE[digest] = rs
        out.append((rid, version, True))
    return out


async def sync_rulesets(
    session_factory: async_sessionmaker[AsyncSession], directory: Path | None = None
) -> list[tuple[str, int, bool]]:
    """Load the rule-set files (``load_all``) and store them versioned. Idempotent."""
    from services.evaluation.domain import loader

    d = Path(directory) if directory is not None else Path(loader.DEFAULT_DIR)
    rulesets = loader.load_all(d)
    async with session_factory() as session, session.begin():
        return await upsert_rulesets(session, list(rulesets), directory=d)


def _model(definition: dict[str, Any], digest: str) -> Any:
    rs = _CACHE.get(digest)
    if rs is None:
        from services.evaluation.domain.rules import RuleSet

        rs = RuleSet.model_validate(definition)
        _CACHE[digest] = rs
    return rs


async def latest_rulesets(session: AsyncSession) -> list[tuple[int, Any]]:
    """(stored version, RuleSet) of the latest version of every rule set."""
    rows = (
        await session.execute(
            select(RuleSetVersion.version, RuleSetVersion.content_hash).where(RuleSetVersion.is_latest.is_(True))
        )
    ).all()
    missing = [r.content_hash for r in rows if r.content_hash not in _CACHE]
    if missing:
        defs = (
            await session.execute(
                select(RuleSetVersion.content_hash, RuleSetVersion.definition).where(
                    RuleSetVersion.content_hash.in_(missing)
                )
            )
        ).all()
        for d in defs:
            _model(d.definition, d.content_hash)
    return [(r.version, _CACHE[r.content_hash]) for r in rows]


async def latest_versions(session: AsyncSession, tier: str | None = None) -> list[RuleSetVersion]:
    """The latest stored version of every rule set (of one tier when given), by rule-set id."""
    q = select(RuleSetVersion).where(RuleSetVersion.is_latest.is_(True)).order_by(RuleSetVersion.ruleset_id)
    if tier:
        q = q.where(RuleSetVersion.tier == tier)
    return list((await session.execute(q)).scalars().all())


async def versions_of(session: AsyncSession, ruleset_id: str) -> list[RuleSetVersion]:
    q = select(RuleSetVersion).where(RuleSetVersion.ruleset_id == ruleset_id).order_by(RuleSetVersion.version)
    return list((await session.execute(q)).scalars().all())


async def is_stored(session: AsyncSession, ruleset_id: str) -> bool:
    q = select(func.count()).where(RuleSetVersion.ruleset_id == ruleset_id)
    return bool((await session.execute(q)).scalar())
