"""整体迁入 (issue 15 item 3): an enterprise that moves into another jurisdiction with a valid title.

On registry's ``enterprise.moved`` (a market-supervision move or an official's region change), each active title
whose level's jurisdiction covers the new region (national and provincial titles; a city title within the same
city) is re-announced to the new jurisdiction: the same recognition (id, validity, announcement day) with the new
``region_code``, ``migrated_in: true`` and ``moved_in_on``. Registry's and notification's read models follow it;
finance's 迁入 rule applies the policy's "operated here for a year" condition to the new jurisdiction's policies.
A county title stays with the county that gave it (it is not valid in the new county).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.app.recognition import recognition_view
from services.evaluation.db import recognitions as recognitions_db
from services.evaluation.db.models import Enterprise, backbone
from services.evaluation.events.contracts import TIER_RECOGNISED, TierRecognised
from shared.audit import record_audit
from shared.events.outbox import emit
from shared.regions import region_tree


def follows(level: str, title_region: str, to_region: str) -> bool:
    """Whether a title of ``level`` given in ``title_region`` is still valid once the enterprise is in
    ``to_region``: national and provincial titles (within the province), a city title within the same city."""
    if level == "national":
        return True
    tree = region_tree()
    issuer = tree.ancestor(title_region, level)
    return issuer is not None and tree.covers(issuer, to_region)


async def moved(session: AsyncSession, uscc: str, from_region: str, to_region: str, moved_on: date) -> int:
    """Re-announce the enterprise's valid titles to ``to_region`` (migrated in); returns how many."""
    ent = await session.get(Enterprise, uscc, with_for_update=True)
    if ent is not None and ent.region_code != to_region:
        ent.region_code = to_region  # the enterprise.updated before it normally did this already
    count = 0
    for rec in await recognitions_db.active_of(session, uscc, lock=True):
        if rec.region_code == to_region or not follows(rec.level, rec.region_code, to_region):
            continue
        if rec.valid_to < moved_on:
            continue
        before = recognition_view(rec)
        rec.region_code = to_region
        rec.migrated_in = True
        await record_audit(session, backbone, None, "recognition.migrated_in", "recognition", str(rec.id),
                           before=before, after={**recognition_view(rec), "from_region_code": from_region,
                                                 "moved_in_on": moved_on})
        await emit(
            session, backbone, TIER_RECOGNISED, rec.uscc,
            TierRecognised(recognition_id=str(rec.id), uscc=rec.uscc, region_code=to_region, tier=rec.tier,
                           level=rec.level, ruleset_id=rec.ruleset_id, batch_year=rec.batch_year,
                           announced_on=rec.announced_on, valid_from=rec.valid_from, valid_to=rec.valid_to,
                           renewal=rec.renewal, migrated_in=True, moved_in_on=moved_on),
            regioncode=to_region,
        )
        count += 1
    return count
