"""Rule sets stored versioned (+ API), preview evaluation, re-evaluation job, simulation."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.db.models import Evaluation, RuleSetVersion, backbone
from services.evaluation.db.ruleset_store import sync_rulesets, upsert_rulesets
from services.evaluation.domain.loader import DEFAULT_DIR, load_all
from tests.evaluation.conftest import TEST_RULESETS, add_enterprise, add_title, count, outbox
from tests.harness import auth, running_service, wait_for

PROVINCE = auth("province_official", "330000")


async def test_rulesets_versioned_and_api(sf: async_sessionmaker[AsyncSession]) -> None:
    shipped = await sync_rulesets(sf)  # the shipped YAML files
    assert shipped and all(created for _, _, created in shipped)
    again = await sync_rulesets(sf)
    assert all(not created for _, _, created in again)  # identical content: no new version
    # changed content under the same id+version is stored as a new version, never overwritten
    srdi = next(rs for rs in load_all(TEST_RULESETS) if rs.id == "T-srdi")
    changed = srdi.model_copy(update={"title": "测试用专精特新认定标准(修订)"})
    async with sf() as s, s.begin():
        out = await upsert_rulesets(s, [changed])
    assert out == [("T-srdi", 2, True)]
    async with sf() as s:
        versions = (await s.execute(select(RuleSetVersion.version, RuleSetVersion.is_latest, RuleSetVersion.title)
                                    .where(RuleSetVersion.ruleset_id == "T-srdi")
                                    .order_by(RuleSetVersion.version))).all()
    assert [(v.version, v.is_latest) for v in versions] == [(1, False), (2, True)]
    assert versions[0].title == "测试用专精特新认定标准"
    published = await outbox(sf, "zjtx.evaluation.ruleset.published.v1")
    assert len(published) == len(shipped) + 3
    async with running_service("evaluation") as (_, client):
        r = await client.get("/api/v1/rulesets", headers=auth("enterprise", "330110", uscc="9" * 18))
        assert r.status_code == 200
        ids = {i["id"] for i in r.json()["items"]}
        assert {"T-srdi", "T-giant"} <= ids and {rs_id for rs_id, _, _ in shipped} <= ids
        r = await client.get("/api/v1/rulesets/T-srdi", headers=PROVINCE)
        body = r.json()
        assert body["version"] == 2 and [v["version"] for v in body["versions"]] == [1, 2]
        assert body["document_number"] == "测试〔2024〕1号"
        assert any(s["code"] == "revenue" and s["source"] == "测试" for s in body["sources"])
        first = shipped[0][0]
        r = await client.get(f"/api/v1/rulesets/{first}", headers=PROVINCE)
        assert r.status_code == 200 and r.json()["definition"]["id"] == first
        if any((DEFAULT_DIR / "cases").glob("*.y*ml")):
            with_cases = [
                (await client.get(f"/api/v1/rulesets/{i}", headers=PROVINCE)).json()["cases"] for i, _, _ in shipped
            ]
            assert any(with_cases)
        assert (await client.get("/api/v1/rulesets/NOPE", headers=PROVINCE)).status_code == 404
        assert (await client.get("/api/v1/rulesets")).status_code == 401


async def test_preview_nothing_stored(sf: async_sessionmaker[AsyncSession]) -> None:
    uscc = "91330110" + "A" * 10
    body = {
        "as_of": "2026-05-01",
        "region_code": "330110",
        "indicators": {"operating_revenue": "60000000.00", "rd_expense": "1200000.00"},
        "titles": [],
    }
    async with running_service("evaluation") as (_, client):
        h = auth("enterprise", "330110", uscc=uscc)
        r = await client.post("/api/v1/evaluations/preview", json=body, headers=h)
        assert r.status_code == 200, r.text
        results = {x["ruleset_id"]: x for x in r.json()["results"]}
        assert set(results) == {"T-srdi", "T-giant"}
        srdi = results["T-srdi"]
        assert srdi["eligible"] is False and srdi["score"] == "0"  # 2% → band C, 0 < pass score 10
        assert srdi["unmet"] and results["T-giant"]["eligible"] is False
        r = await client.post("/api/v1/evaluations/preview", json={**body, "ruleset": "T-srdi",
                              "indicators": {"operating_revenue": "60000000.00", "rd_expense": "3000000.00"}},
                              headers=h)
        res = r.json()["results"]
        assert [x["ruleset_id"] for x in res] == ["T-srdi"] and res[0]["eligible"] is True
        assert res[0]["items"][1]["band"].startswith("A")  # exactly 5%: the favourable band (decision 2)
        r = await client.post("/api/v1/evaluations/preview", json={**body, "ruleset": "T-giant", "titles": [
            {"tier": "srdi", "level": "province", "valid_from": "2025-01-01", "valid_to": "2027-12-31"}]}, headers=h)
        assert r.json()["results"][0]["eligible"] is True
        r = await client.post("/api/v1/evaluations/preview", json={**body, "tier": "srdi"}, headers=h)
        assert r.status_code == 422
        r = await client.post("/api/v1/evaluations/preview", json={**body, "ruleset": "NOPE"}, headers=h)
        assert r.status_code == 422
    assert await count(sf, Evaluation) == 0
    assert await outbox(sf, "zjtx.evaluation.evaluation.completed.v1") == []


async def test_reevaluate_job_progress(sf: async_sessionmaker[AsyncSession]) -> None:
    usccs = [await add_enterprise(sf, region=r) for r in ("330110", "330106", "330110", "320102")]
    async with running_service("evaluation") as (_, client):
        r = await client.post("/api/v1/rulesets/T-srdi/reevaluate", headers=auth("city_official", "330100"))
        assert r.status_code == 403
        r = await client.post("/api/v1/rulesets/T-srdi/reevaluate", headers=PROVINCE)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        async def done() -> bool:
            j = (await client.get(f"/api/v1/reevaluations/{job_id}", headers=PROVINCE)).json()
            return bool(j["status"] in ("done", "failed"))

        await wait_for(done, timeout=20, what="job done")
        j = (await client.get(f"/api/v1/reevaluations/{job_id}", headers=PROVINCE)).json()
        assert j["status"] == "done", j
        assert j["total"] == 3 and j["done"] == 3 and j["progress_pct"] == 100.0  # 320102 not covered (330000)
    async with sf() as s:
        rows = (await s.execute(select(Evaluation.uscc, Evaluation.eligible, Evaluation.trigger))).all()
    assert sorted(r.uscc for r in rows) == sorted(usccs[:3])
    assert all(r.eligible and r.trigger == "reevaluation" for r in rows)
    events = await outbox(sf, "zjtx.evaluation.evaluation.completed.v1")
    assert len(events) == 3 and all(e["results"][0]["ruleset_id"] == "T-srdi" for e in events)
    async with sf() as s:
        headers = (await s.execute(select(backbone.outbox.c.headers).where(
            backbone.outbox.c.type == "zjtx.evaluation.evaluation.completed.v1"))).scalars().first()
    assert headers["ce_type"] == "zjtx.evaluation.evaluation.completed.v1" and headers["ce_subject"]


async def test_simulation_draft_vs_in_force(sf: async_sessionmaker[AsyncSession]) -> None:
    low = await add_enterprise(sf, revenue="12000000", rd="480000")  # 4% → 10 points
    high = await add_enterprise(sf, region="330106", revenue="60000000", rd="3000000")  # 5% → 20
    poor = await add_enterprise(sf, revenue="8000000", rd="800000")  # below 1000万
    await add_title(sf, high, "srdi", date(2025, 1, 1), date(2027, 12, 31), region="330106")
    async with running_service("evaluation") as (_, client):
        # raise the pass score: 'low' loses
        r = await client.post("/api/v1/simulations", json={
            "base_ruleset": "T-srdi", "changes": [{"path": "pass_score", "value": 15}]}, headers=PROVINCE)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["totals"]["current"] == 2 and body["totals"]["draft"] == 1
        assert body["losers"] == [low] and body["gainers"] == []
        regions = {x["region_code"]: x for x in body["regions"]}
        assert regions["330110"]["delta"] == -1 and regions["330106"]["delta"] == 0
        # a YAML draft lowering the revenue line: 'poor' gains
        text = (TEST_RULESETS / "T-srdi.yaml").read_text(encoding="utf-8").replace("value: 1000万", "value: 500万")
        r = await client.post("/api/v1/simulations", json={"draft_yaml": text}, headers=PROVINCE)
        assert r.status_code == 200, r.text
        assert r.json()["gainers"] == [poor] and r.json()["totals"]["draft"] == 3
        # the county sees only its own enterprises
        r = await client.post("/api/v1/simulations", json={"draft_yaml": text},
                              headers=auth("county_official", "330106"))
        assert r.json()["totals"]["enterprises"] == 1
        r = await client.post("/api/v1/simulations", json={"draft_yaml": "id: [broken"}, headers=PROVINCE)
        assert r.status_code == 422
        r = await client.post("/api/v1/simulations", json={"base_ruleset": "T-srdi",
                              "changes": [{"path": "items.0.bands.0.points", "value": 99}]}, headers=PROVINCE)
        assert r.status_code == 422
    assert await count(sf, Evaluation) == 0
    assert await outbox(sf, "zjtx.evaluation.evaluation.completed.v1") == []


async def test_concurrent_syncs_do_not_collide(engine: AsyncEngine) -> None:
    """Start-up sync and demo load run at once: both succeed, each rule set is stored once (no pk_rulesets)."""
    import asyncio

    from services.evaluation.db.models import RuleSetVersion as RSV
    from shared.db import make_session_factory

    factories = [make_session_factory(engine) for _ in range(3)]
    results = await asyncio.gather(*(sync_rulesets(f) for f in factories))
    shipped = {rs.id for rs in load_all(DEFAULT_DIR)}
    assert all({rid for rid, _, _ in r} == shipped for r in results)
    # exactly one of the concurrent syncs created each rule set; the others saw it as identical content
    for rid in shipped:
        created = [c for r in results for i, v, c in r if i == rid]
        assert sorted(created) == [False, False, True]
        assert {v for r in results for i, v, _ in r if i == rid} == {1}
    async with factories[0]() as s:
        rows = (await s.execute(select(RSV.ruleset_id, RSV.version))).all()
    assert sorted(rows) == sorted((rid, 1) for rid in shipped)
    assert len(await outbox(factories[0], "zjtx.evaluation.ruleset.published.v1")) == len(shipped)


async def test_reevaluation_stores_what_the_reference_path_stores(sf: async_sessionmaker[AsyncSession]) -> None:
    """The job's fast path (domain.fast, COPY) stores and publishes exactly what evaluate_and_store (the
    reference engine, ORM) does: explanation, eligibility, score, tier, level, version and event summary."""
    import uuid

    from services.evaluation.db.models import Job
    from services.evaluation.evaluating import evaluate_and_store
    from services.evaluation.jobs import start_reevaluation

    usccs = [
        await add_enterprise(sf, revenue="60000000", rd="3000000"),
        await add_enterprise(sf, region="330106", revenue="12000000", rd="480000"),
        await add_enterprise(sf, revenue="8000000", rd="800000"),
        await add_enterprise(sf, revenue="50000000", rd="0"),
    ]
    await add_title(sf, usccs[1], "srdi", date(2025, 1, 1), date(2027, 12, 31), region="330106")
    year = date.today().year - 1
    as_of = date(2026, 6, 30)
    job_id = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="T-srdi", status="queued", requested_by="test"))
    await start_reevaluation(sf, job_id, "T-srdi", as_of=as_of, batch_size=3)
    async with sf() as s, s.begin():
        for u in usccs:
            await evaluate_and_store(s, u, year, as_of, trigger="reference", ruleset_ids={"T-srdi"})
    cols = (Evaluation.uscc, Evaluation.trigger, Evaluation.ruleset_id, Evaluation.ruleset_version, Evaluation.tier,
            Evaluation.level, Evaluation.as_of, Evaluation.eligible, Evaluation.score, Evaluation.explanation,
            Evaluation.year, Evaluation.region_code)
    async with sf() as s:
        rows = (await s.execute(select(*cols))).all()
    fast = {r.uscc: r for r in rows if r.trigger == "reevaluation"}
    ref = {r.uscc: r for r in rows if r.trigger == "reference"}
    assert sorted(fast) == sorted(ref) == sorted(usccs)
    for u in usccs:
        a, b = fast[u], ref[u]
        assert a.explanation == b.explanation
        assert (a.ruleset_id, a.ruleset_version, a.tier, a.level, a.as_of, a.eligible, a.score, a.year,
                a.region_code) == (b.ruleset_id, b.ruleset_version, b.tier, b.level, b.as_of, b.eligible, b.score,
                                   b.year, b.region_code)
    assert {r.eligible for r in fast.values()} == {True, False}
    events = await outbox(sf, "zjtx.evaluation.evaluation.completed.v1")
    by_uscc: dict[str, list[dict[str, object]]] = {}
    for e in events:
        by_uscc.setdefault(e["uscc"], []).append(e)
    for u in usccs:
        job_event, ref_event = by_uscc[u]  # outbox order: the job's first
        assert job_event == ref_event


def test_job_outbox_row_headers_match_the_envelope() -> None:
    """The job's bulk outbox rows carry exactly the headers ``shared.events.outbox.outbox_row`` writes."""
    from services.evaluation.jobs import outbox_row as job_row
    from shared.events.outbox import outbox_row as ref_row

    for region in ("330110", None):
        mine = job_row("zjtx.evaluation.evaluation.completed.v1", "91330110X", {"a": 1}, region,
                       time="2026-11-22T05:00:00.123456+00:00")
        ref = ref_row(backbone, "zjtx.evaluation.evaluation.completed.v1", "91330110X", {"a": 1},
                      regioncode=region, event_id=mine["event_id"])
        ref["headers"]["ce_time"] = "2026-11-22T05:00:00.123456+00:00"
        assert list(mine["headers"].items()) == list(ref["headers"].items())
        assert {k: v for k, v in mine.items() if k != "headers"} == {k: v for k, v in ref.items() if k != "headers"}
