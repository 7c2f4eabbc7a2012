"""One envelope encoder: the single path (``emit``), ``emit_many`` and the bulk COPY path (``OutboxCopy`` +
``copy_outbox``) write byte-identical outbox rows for the same event, and the relay's wake-up goes with them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from shared.context import correlation_id_var, traceparent_var
from shared.events.encoder import OutboxCopy, copy_outbox, dataschema_of
from shared.events.envelope import CloudEvent
from shared.events.outbox import emit, emit_many, outbox_row
from shared.ids import uuid7
from tests.shared.support import REGISTERED, scratch

STAMP = "2026-11-22T05:00:00.123456+00:00"
TRACE = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


@pytest.mark.parametrize(
    ("region", "correlation", "subject"),
    [("330106", "corr-1", "91330106MA2XXXXX1X"), (None, None, 'odd\t"名\\称"\n')],
)
async def test_single_many_and_bulk_rows_are_identical(
    region: str | None, correlation: str | None, subject: str
) -> None:
    payload = {"uscc": subject, "name": "杭州示例科技有限公司", "note": 'tab\t"quote" back\\slash'}
    async with scratch() as sc:
        tokens = (correlation_id_var.set(correlation), traceparent_var.set(TRACE))
        try:
            ids = [uuid7() for _ in range(3)]
            async with sc.sf() as s, s.begin():
                row = outbox_row(sc.src, REGISTERED, subject, payload, regioncode=region, event_id=ids[0], time=STAMP)
                await s.execute(sc.src.outbox.insert().values(row))  # what ``emit`` writes, with a fixed time
                await emit_many(s, sc.src, [outbox_row(sc.src, REGISTERED, subject, payload, regioncode=region,
                                                       event_id=ids[1], time=STAMP)])
                bulk = OutboxCopy(sc.src.service, REGISTERED, STAMP)
                _, line = bulk.line(subject, payload, region, event_id=str(ids[2]))
                await copy_outbox(s, sc.src, [line.encode()])
        finally:
            traceparent_var.reset(tokens[1])
            correlation_id_var.reset(tokens[0])
        async with sc.sf() as s:
            rows = (await s.execute(text(
                "SELECT event_id, topic, key, type, headers::text, payload::text "
                f'FROM "{sc.schema}".outbox ORDER BY seq'
            ))).all()
    assert [r[0] for r in rows] == ids
    headers = [r[4] for r in rows]
    # the correlation id defaults to the event's own id: the only header that differs besides ce_id
    normalised = {h.replace(str(i), "<id>") for h, i in zip(headers, ids, strict=True)}
    assert len(normalised) == 1, headers
    assert {r[1:4] for r in rows} == {(sc.topic, subject, REGISTERED)}
    assert len({r[5] for r in rows}) == 1
    event = CloudEvent.from_kafka([(k, v.encode()) for k, v in row["headers"].items()], rows[2][5].encode())
    assert event.traceparent == TRACE and event.regioncode == region and event.subject == subject
    assert event.dataschema == dataschema_of(sc.src.service, REGISTERED)
    assert event.correlationid == (correlation or str(ids[0]))


async def test_bulk_path_wakes_the_relay_once_at_commit() -> None:
    """``copy_outbox`` NOTIFYs the relay's channel (delivered at commit) like ``emit``: the job no longer
    NOTIFYs by itself."""
    import asyncpg

    from shared.db import asyncpg_dsn
    from tests.harness import settings

    async with scratch() as sc:
        conn = await asyncpg.connect(asyncpg_dsn(settings("registry").database_url))
        got: list[str] = []
        await conn.add_listener(sc.src.notify_channel, lambda *a: got.append(a[2]))
        try:
            async with sc.sf() as s, s.begin():
                bulk = OutboxCopy(sc.src.service, REGISTERED, STAMP)
                lines = "".join(bulk.line(f"9133010{i:011d}", {"uscc": "x"})[1] for i in range(3))
                await copy_outbox(s, sc.src, [lines.encode()])
                await emit(s, sc.src, REGISTERED, "91330100000000000X", {"uscc": "x"})
            for _ in range(50):
                if got:
                    break
                await conn.execute("SELECT 1")
            assert got == [sc.src.notify_channel]
            assert await sc.pending() == 4
        finally:
            await conn.close()


def test_bulk_encoder_crosses_processes() -> None:
    """The job's worker processes get the encoder pickled."""
    import pickle

    bulk = OutboxCopy("registry", REGISTERED, STAMP)
    again = pickle.loads(pickle.dumps(bulk))
    eid = str(uuid.uuid4())
    assert again.line("u", {"a": 1}, "330106", eid) == bulk.line("u", {"a": 1}, "330106", eid)
