"""Rule sets stored versioned (+ API), preview evaluation, re-evaluation job, simulation."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.evaluation.db.explanations import full_explanation_text
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
    """The job's bulk path (domain.engine.encode in workers, COPY) stores and publishes exactly what
    evaluate_and_store (one evaluation at a time, ORM) does: explanation, eligibility, score, tier, level,
    version and event summary."""
    import uuid

    from services.evaluation.app.evaluating import evaluate_and_store
    from services.evaluation.app.reevaluation import start_reevaluation
    from services.evaluation.db.models import Job

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
    # the API returns the job's explanations rebuilt from the normalised rows, equal to the reference engine's
    expected = {u: await _reference_text(sf, u, year, as_of, "T-srdi") for u in usccs}

    async def api_explanations(trigger: str) -> None:
        _forget_templates()  # read back from the database, not from this process's memory
        async with running_service("evaluation") as (_, client):
            for u in usccs:
                r = await client.get(f"/api/v1/enterprises/{u}/evaluations", headers=PROVINCE)
                assert r.status_code == 200
                (item,) = [i for i in r.json()["items"] if i["ruleset_id"] == "T-srdi"]
                assert item["explanation"] == json.loads(expected[u])
                async with sf() as s:
                    row = await s.get(Evaluation, uuid.UUID(item["id"]))
                    assert row is not None and row.trigger == trigger

    await api_explanations("reevaluation")
    async with sf() as s, s.begin():  # what the registry.indicators.reported handler runs
        for u in usccs:
            await evaluate_and_store(s, u, year, as_of, trigger="reference", ruleset_ids={"T-srdi"})
    await api_explanations("reference")
    _forget_templates()
    async with sf() as s:
        rows = (await s.execute(select(Evaluation))).scalars().all()
    fast = {r.uscc: r for r in rows if r.trigger == "reevaluation"}
    ref = {r.uscc: r for r in rows if r.trigger == "reference"}
    assert sorted(fast) == sorted(ref) == sorted(usccs)
    for u in usccs:
        a, b = fast[u], ref[u]
        # stored normalised by both paths (one template), rebuilt character for character
        assert a.full_explanation is None and b.full_explanation is None
        assert a.explanation_template == b.explanation_template is not None
        assert a.explanation_values == b.explanation_values
        assert full_explanation_text(a) == full_explanation_text(b) == expected[u]
        assert len(a.explanation_values or "") < len(expected[u]) / 2
        assert a.explanation == b.explanation == json.loads(expected[u])
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


def _forget_templates() -> None:
    from services.evaluation.db import explanations
    from services.evaluation.domain import explanation

    explanations._TEMPLATES.clear()
    explanation._DECODERS.clear()


async def _reference_text(sf: async_sessionmaker[AsyncSession], uscc: str, year: int, as_of: date, rid: str) -> str:
    """The reference engine's explanation text (``evaluate(...).model_dump(mode="json")``) from the read model."""
    from services.evaluation.app.evaluating import build_facts, titles_of
    from services.evaluation.db.models import Enterprise, IndicatorReport
    from services.evaluation.db.ruleset_store import latest_rulesets
    from services.evaluation.domain.engine import evaluate
    from shared.indicators import IndicatorSet

    async with sf() as s:
        ent = await s.get(Enterprise, uscc)
        report = await s.get(IndicatorReport, (uscc, year))
        assert ent is not None and report is not None
        facts = build_facts(IndicatorSet.model_validate(report.indicators), await titles_of(s, uscc),
                            region_code=ent.region_code, reporting_year=year, founded_on=ent.founded_on,
                            industry_code=ent.industry_code, is_manufacturing=ent.is_manufacturing)
        rs = next(r for _, r in await latest_rulesets(s) if str(r.id) == rid)
    return json.dumps(evaluate(rs, facts, as_of).model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


async def test_rows_stored_before_normalisation_keep_their_full_explanation(
    sf: async_sessionmaker[AsyncSession],
) -> None:
    """A row written before explanations were normalised (full ``explanation`` column, no template) is read as is."""
    import uuid

    uscc = await add_enterprise(sf, revenue="60000000", rd="3000000")
    old = {"ruleset_id": "T-srdi", "items": [{"code": "x", "points": "1.00"}], "gaps": []}
    async with sf() as s, s.begin():
        s.add(Evaluation(id=uuid.uuid4(), uscc=uscc, region_code="330110", year=2025, ruleset_id="T-srdi",
                         ruleset_version="1", tier="srdi", level="province", as_of=date(2026, 6, 30),
                         eligible=True, score=None, full_explanation=old))
    async with running_service("evaluation") as (_, client):
        r = await client.get(f"/api/v1/enterprises/{uscc}/evaluations", headers=PROVINCE)
        assert r.status_code == 200
        assert [i["explanation"] for i in r.json()["items"]] == [old]


def test_job_event_texts_are_the_outbox_rows_json() -> None:
    """The job writes its outbox rows as COPY lines by shared's bulk encoder, its payload from text fragments:
    the same headers as ``outbox_row`` and ``json.dumps`` of the payload (with and without a region, with a
    correlation id, escaping)."""
    from services.evaluation.app.evaluating import COMPLETED
    from services.evaluation.app.reevaluation import _EventTexts
    from services.evaluation.domain.explanation import gap
    from shared.context import correlation_id_var
    from shared.events.outbox import outbox_row

    stamp = "2026-11-22T05:00:00.123456+00:00"
    for region, corr, score in (("330110", None, "65.00"), (None, 'c"1\\é', None)):
        token = correlation_id_var.set(corr)
        try:
            summary = {"ruleset_id": "R-\"x\"", "tier": "srdi", "eligible": score is not None, "score": score,
                       "level": "province", "unmet": 0 if score is not None else 1,
                       "gaps": None if score is not None else [  # gaps: escaping, nulls, the key order
                           {"code": "rd", "description": "研发 \"差\" ¥1\\2\n", "metric": None, "unit": "yuan",
                            "current": None, "required": "≥ 100万元", "shortfall": "1.5", "yuan_needed": "1.50"}]}
            # the gaps as the engine's walk writes them (compact form; yuan to 2 decimals in the event)
            texts = [] if score is not None else [gap(dict(
                code="rd", description="研发 \"差\" ¥1\\2\n", unit="yuan", required="≥ 100万元",
                shortfall=Decimal("1.5"), shortfall_display="1.5元", yuan_needed=Decimal("1.5")))]
            line = _EventTexts(stamp, date(2026, 6, 30)).line("91330110X", region, 2025, summary,
                                                               summary["unmet"], texts)
            eid, topic, key, kind, headers, payload = [
                v.replace("\\\\", "\\") for v in line.rstrip("\n").split("\t")]
            want_payload = {"uscc": "91330110X", "region_code": region, "year": 2025, "as_of": "2026-06-30",
                            "results": [summary]}
            ref = outbox_row(backbone, COMPLETED, "91330110X", want_payload, regioncode=region, time=stamp,
                             event_id=uuid.UUID(eid))
        finally:
            correlation_id_var.reset(token)
        assert (topic, key, kind) == (ref["topic"], ref["key"], ref["type"])
        assert list(json.loads(headers).items()) == list(ref["headers"].items())
        assert json.loads(payload) == want_payload
        assert payload == json.dumps(want_payload, ensure_ascii=False, separators=(",", ":"))


async def test_copy_text_survives_backslashes_tabs_and_newlines(sf: async_sessionmaker[AsyncSession]) -> None:
    """The job writes its rows in COPY's text format: every value comes back as it was written."""
    from sqlalchemy import text

    from shared.db import driver_connection
    from shared.events.encoder import copy_json as _copy_json
    from shared.events.encoder import copy_text as _copy_text

    values = ['{"reason":"缺少 \\"数据\\"\\n"}', "a\tb\nc\rd\\e\\N", "\\N", "plain 文本"]
    async with sf() as s, s.begin():
        await s.execute(text("CREATE TEMP TABLE copy_probe (i int, v text) ON COMMIT DROP"))
        data = "".join(f"{i}\t{_copy_text(v)}\n" for i, v in enumerate(values)).encode()

        async def source() -> Any:
            yield data

        raw = await driver_connection(s)
        await raw.copy_to_table("copy_probe", source=source(), format="text")
        back = [r[0] for r in (await s.execute(text("SELECT v FROM copy_probe ORDER BY i"))).all()]
    assert back == values
    # compact JSON (explanations, event headers and payloads) only needs its backslashes escaped
    for v in (values[0], json.dumps({"a": "x\ty\nz\r\\", "b": "专精特新"}, ensure_ascii=False, separators=(",", ":"))):
        assert _copy_json(v) == _copy_text(v)


async def test_reevaluation_in_worker_processes_stores_the_same(sf: async_sessionmaker[AsyncSession]) -> None:
    """With evaluation in worker processes (batch k evaluated while k+1 is read and k-1 written) every covered
    enterprise is stored once, with the reference explanation, and published once."""
    import uuid

    from services.evaluation.app.reevaluation import start_reevaluation
    from services.evaluation.db.models import Job

    usccs = [await add_enterprise(sf, revenue=str(8_000_000 + i * 7_000_000), rd=str(300_000 * i)) for i in range(5)]
    usccs.append(await add_enterprise(sf, region="330106", revenue="12000000", rd="480000"))
    year = date.today().year - 1
    as_of = date(2026, 6, 30)
    job_id = uuid.uuid4()
    async with sf() as s, s.begin():
        s.add(Job(id=job_id, kind="reevaluate", ruleset_id="T-srdi", status="queued", requested_by="test"))
    await start_reevaluation(sf, job_id, "T-srdi", as_of=as_of, batch_size=2, workers=2)
    _forget_templates()
    async with sf() as s:
        job = await s.get(Job, job_id)
        rows = (await s.execute(select(Evaluation).where(Evaluation.job_id == job_id))).scalars().all()
    assert job is not None and job.status == "done" and job.done == job.total == len(usccs)
    assert sorted(r.uscc for r in rows) == sorted(usccs)
    for r in rows:
        assert full_explanation_text(r) == await _reference_text(sf, r.uscc, year, as_of, "T-srdi")
    events = await outbox(sf, "zjtx.evaluation.evaluation.completed.v1")
    assert sorted(e["uscc"] for e in events) == sorted(usccs)
