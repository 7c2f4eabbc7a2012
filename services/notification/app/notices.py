"""Creating notices: one inbox row per (source, recipient) and one delivery row per outbound channel.

Dedup is by construction (unique keys in ``db/notices.py``), in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.db import commissioners as commissioner_repo
from services.notification.db import enterprises as enterprise_repo
from services.notification.db import notices as notice_repo
from services.notification.db.models import backbone
from services.notification.domain.schedule import quiet_until
from services.notification.domain.templates import INBOX_FIRST, Rendered, render
from services.notification.events.contracts import NOTICE_SENT, NoticeSent
from shared.context import correlation_id_var
from shared.demo import is_demo_correlation
from shared.events.outbox import emit
from shared.tiers import TIER_NAMES, tier_name


@dataclass(frozen=True)
class Recipient:
    key: str
    mobile: str | None = None
    email: str | None = None
    display: str = ""


def enterprise_key(uscc: str) -> str:
    return f"enterprise:{uscc}"


def commissioner_key(commissioner_id: str) -> str:
    return f"commissioner:{commissioner_id}"


def official_key(role: str, region: str) -> str:
    return f"official:{role}:{region}"


async def enterprise_recipient(session: AsyncSession, uscc: str) -> tuple[Recipient, dict[str, Any]]:
    """The enterprise's inbox plus its 服务联络员's mobile and email (if the registry told us)."""
    row = await enterprise_repo.get(session, uscc)
    if row is None:
        return Recipient(enterprise_key(uscc), display=uscc), {"enterprise_name": uscc, "uscc": uscc}
    name = row["name"] or uscc
    rec = Recipient(enterprise_key(uscc), row["liaison_mobile"], row["liaison_email"], row["liaison_name"] or name)
    return rec, {"enterprise_name": name, "uscc": uscc, "region_code": row["region_code"]}


async def commissioner_recipient(
    session: AsyncSession, commissioner_id: str
) -> tuple[Recipient, dict[str, Any]] | None:
    row = await commissioner_repo.get(session, commissioner_id)
    if row is None:
        return None
    rec = Recipient(commissioner_key(row["id"]), row["mobile"], row["email"], row["name"])
    return rec, {"commissioner_name": row["name"], "commissioner_mobile": row["mobile"], "commissioner_id": row["id"]}


def official_recipient(role: str, region: str) -> Recipient:
    return Recipient(official_key(role, region), display=f"{role}@{region}")


async def create_notice(
    session: AsyncSession,
    *,
    dedup_key: str,
    recipient: Recipient,
    template: str,
    variables: dict[str, Any],
    uscc: str | None,
    now: datetime | None = None,
    channels: tuple[str, ...] = ("sms", "email"),
    tier: str | None = None,
) -> int | None:
    """Insert the inbox notice and its deliveries on ``channels``; None if this recipient already has it. A new notice
    is published (``notice.sent``, same transaction) for the programme's reports; ``tier`` names the tier it is
    about (else taken from the variables' ``tier``/``tier_name``)."""
    now = now or datetime.now(UTC)
    rendered = render(template, variables)
    notice_id = await notice_repo.insert_notice(session, {
        "dedup_key": dedup_key,
        "recipient": recipient.key,
        "uscc": uscc,
        "template_code": rendered.code,
        "template_version": rendered.version,
        "title": rendered.title,
        "body": rendered.body,
        "urgent": rendered.urgent,
        "variables": {k: (v if isinstance(v, int | bool | None) else str(v)) for k, v in variables.items()},
    })
    if notice_id is None:
        return None
    if is_demo_correlation(correlation_id_var.get()):
        channels = ()  # caused by a demo load (shared/demo.py): inbox only, no SMS or e-mail
    rows = await delivery_rows(session, notice_id, dedup_key, recipient, rendered.urgent, now, channels)
    await notice_repo.insert_deliveries(session, rows)
    await _published(session, notice_id, recipient, rendered, variables, uscc, tier, [r["channel"] for r in rows], now)
    return notice_id


_CHINA = timezone(timedelta(hours=8))


async def _published(
    session: AsyncSession, notice_id: int, recipient: Recipient, rendered: Rendered, variables: dict[str, Any],
    uscc: str | None, tier: str | None, channels: list[str], now: datetime,
) -> None:
    """``notice.sent``: what the notice is (kind, tier, region, recipient's kind), never whom it reaches how."""
    kind, _, rest = recipient.key.partition(":")
    region = variables.get("region_code") or (rest.rpartition(":")[2] if kind == "official" else None)
    tier = tier or variables.get("tier") or _TIER_OF_NAME.get(str(variables.get("tier_name")))
    tier = tier if tier in TIER_NAMES else None
    payload = NoticeSent(
        notice_id=notice_id, uscc=uscc, region_code=region, kind=rendered.code, kind_name=rendered.title,
        recipient_kind="enterprise" if kind == "enterprise" else "commissioner" if kind == "commissioner"
        else "official",
        commissioner_id=rest if kind == "commissioner" else None, tier=tier,
        tier_name=None if tier is None else tier_name(tier), channels=channels,
        year=now.astimezone(_CHINA).year, occurred_at=now,
    )
    await emit(session, backbone, NOTICE_SENT, uscc or region or recipient.key, payload, regioncode=region)


_TIER_OF_NAME = {name: code for code, name in TIER_NAMES.items()}


async def add_deliveries(
    session: AsyncSession,
    notice_id: int,
    dedup_key: str,
    recipient: Recipient,
    urgent: bool,
    now: datetime,
    channels: tuple[str, ...] = ("sms", "email"),
) -> int:
    """Queue the SMS/email sends of a notice per the recipient's preferences and quiet hours."""
    return await notice_repo.insert_deliveries(
        session, await delivery_rows(session, notice_id, dedup_key, recipient, urgent, now, channels))


async def delivery_rows(
    session: AsyncSession,
    notice_id: int,
    dedup_key: str,
    recipient: Recipient,
    urgent: bool,
    now: datetime,
    channels: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The delivery rows of a notice's sends on ``channels`` the recipient has an address for and has not turned
    off, deferred to the end of its quiet hours unless urgent."""
    pref = await notice_repo.preferences_of(session, recipient.key)
    wait = None
    if pref is not None and not urgent:
        wait = quiet_until(now, pref["quiet_start"], pref["quiet_end"])
    rows = []
    for channel, address in (("sms", recipient.mobile), ("email", recipient.email)):
        if channel not in channels or not address or (pref is not None and not pref[channel]):
            continue
        rows.append(
            {
                "notice_id": notice_id,
                "dedup_key": dedup_key,
                "recipient": recipient.key,
                "channel": channel,
                "address": address,
                "urgent": urgent,
                "status": "deferred" if wait else "pending",
                "next_attempt_at": wait or now,
            }
        )
    return rows


async def backfill_enterprise(session: AsyncSession, uscc: str, channels: tuple[str, ...], days: int = 7) -> int:
    """The liaison's contact arrived after some notices (events from different topics are not ordered):
    queue the sends those recent notices could not have, once each (the unique key still holds). Inbox-first
    notices (gap advice) stay in the inbox."""
    if not channels or is_demo_correlation(correlation_id_var.get()):
        return 0  # a demo load's contacts: its notices stay in the inbox
    rec, _ = await enterprise_recipient(session, uscc)
    now = datetime.now(UTC)
    n = 0
    for row in await notice_repo.recent(session, rec.key, now - timedelta(days=days), INBOX_FIRST):
        n += await add_deliveries(session, row.id, row.dedup_key, rec, row.urgent, now, channels)
    return n
