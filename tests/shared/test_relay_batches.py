"""The relay hands record batches to the producer: same partitions as the default partitioner, per-key
order kept, and a record larger than a batch still goes out."""

from __future__ import annotations

import json

from aiokafka.partitioner import DefaultPartitioner

from shared.events.outbox import OutboxRelay, emit, emit_many, outbox_row
from tests.harness import make_producer
from tests.shared.support import REGISTERED, header, new_uscc, read_all, scratch


async def test_relay_batches_keep_partitioning_and_order() -> None:
    async with scratch(partitions=4) as sc:
        keys = [new_uscc() for _ in range(30)]
        emitted: dict[str, list[str]] = {k: [] for k in keys}
        async with sc.sf() as s, s.begin():
            for i in range(300):
                key = keys[i % len(keys)]
                eid = await emit(s, sc.src, REGISTERED, key, {"uscc": key, "n": i})
                emitted[key].append(str(eid))
            big_key = keys[0]
            big = await emit(s, sc.src, REGISTERED, big_key, {"uscc": big_key, "blob": "专" * 300_000})
            emitted[big_key].append(str(big))
        producer = await make_producer()
        try:
            assert await OutboxRelay(sc.src, sc.sf, producer).drain() == 301
            partitions = sorted(await producer.partitions_for(sc.topic))
        finally:
            await producer.stop()
        records = await read_all(sc.topic, 301)
        assert len(records) == 301
        seen: dict[str, list[str]] = {k: [] for k in keys}
        for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
            key = rec.key.decode()
            assert rec.partition == DefaultPartitioner()(rec.key, partitions, None), key
            seen[key].append(header(rec, "ce_id") or "")
        assert seen == emitted  # every key's events in emission order, none lost or doubled
        blob = next(r for r in records if header(r, "ce_id") == str(big))
        assert len(json.loads(blob.value)["blob"]) == 300_000


async def test_bulk_rows_written_on_the_driver_connection_roll_back_with_the_session() -> None:
    """``emit_many`` COPYs on the asyncpg connection under the session: when that is the transaction's first
    statement it must still be inside the transaction (SQLAlchemy's adapter begins lazily), so a rollback takes
    the rows with it."""
    async with scratch() as sc:
        key = new_uscc()

        class Abort(Exception):
            pass

        try:
            async with sc.sf() as s, s.begin():
                await emit_many(s, sc.src, [outbox_row(sc.src, REGISTERED, key, {"uscc": key})])
                raise Abort
        except Abort:
            pass
        assert await sc.pending() == 0, "the COPY committed on its own, outside the session's transaction"
        async with sc.sf() as s, s.begin():
            await emit_many(s, sc.src, [outbox_row(sc.src, REGISTERED, key, {"uscc": key})])
        assert await sc.pending() == 1
