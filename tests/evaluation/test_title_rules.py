"""Which rule set decides a title (issue 15 item 1): tier + title level → rule set is explicit per-province data
(``rulesets/title_rules/<province>.yaml``), used at submission, at the deciding review and at announcement, and
shown in the application; the application never offers a step that would be refused for unmet prerequisites."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import yaml
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluation.app.evaluating import evaluate_and_store
from services.evaluation.app.title_rules import load_title_rules
from services.evaluation.db.models import Recognition
from services.evaluation.db.ruleset_store import upsert_rulesets
from services.evaluation.domain.loader import DEFAULT_DIR, load_all
from services.evaluation.domain.rules import RuleSet
from services.evaluation.domain.title_rules import deciding_ruleset
from tests.evaluation.conftest import TEST_RULESETS, add_enterprise, add_title
from tests.harness import auth, running_service

COUNTY = auth("county_official", "330110")
CITY = auth("city_official", "330100")
PROVINCE = auth("province_official", "330000")
# the nominating county official and a second province official: one person, one step (issue 16)
NOMINATOR = auth("county_official", "330110", sub="county-330110-nominator")
PROVINCE_B = auth("province_official", "330000", sub="province-330000-b")


def test_shipped_mapping_decides_by_title_level_not_by_jurisdiction() -> None:
    """Zhejiang: a province-level 专精特新 is decided under the national standard in force (never 余杭's district
    rule set, which covers the same enterprise); a county-level one under the county's own rule set."""
    rules = load_title_rules(Path(DEFAULT_DIR) / "title_rules")
    shipped = load_all()

    def decided(tier: str, level: str, region: str, on: date) -> str | None:
        rs = deciding_ruleset(rules, shipped, tier=tier, level=level, region_code=region, on=on)
        return None if rs is None else str(rs.id)

    assert decided("srdi", "province", "330110", date(2026, 6, 30)) == "MIIT-2026-2-srdi"
    assert decided("srdi", "province", "330110", date(2025, 6, 30)) == "MIIT-2022-63-srdi"
    assert decided("srdi", "county", "330110", date(2026, 6, 30)) == "YH-2022-district-srdi"
    assert decided("srdi", "county", "330106", date(2026, 6, 30)) is None  # no county rule set there
    assert decided("innovative", "province", "330110", date(2026, 6, 30)) == "MIIT-2026-2-innovative"
    assert decided("little_giant", "national", "330110", date(2026, 6, 30)) == "MIIT-2026-2-little_giant"
    assert decided("hidden_champion", "province", "330106", date(2026, 6, 30)) == "ZJ-2025-233-hidden_champion"
    assert decided("srdi", "province", "110101", date(2026, 6, 30)) is None  # a province without a mapping
    # every rule set the mapping names is shipped
    ids = {str(rs.id) for rs in shipped}
    for province in rules.values():
        for levels in province.titles.values():
            assert set().union(*levels.values()) <= ids


async def _store_district_ruleset(sf: async_sessionmaker[AsyncSession]) -> None:
    doc = yaml.safe_load((TEST_RULESETS / "T-srdi.yaml").read_text(encoding="utf-8"))
    doc.update(id="T-district-srdi", title="测试用区级专精特新认定条件", level="county", jurisdiction="330110")
    async with sf() as s, s.begin():
        await upsert_rulesets(s, [RuleSet.model_validate(doc)], publish=False)


async def test_submission_attaches_the_evaluation_of_the_deciding_rule_set(
    sf: async_sessionmaker[AsyncSession],
) -> None:
    await _store_district_ruleset(sf)
    uscc = await add_enterprise(sf)
    year = date.today().year - 1
    async with sf() as s, s.begin():  # the district rule set's evaluation is the newest one of the tier
        await evaluate_and_store(s, uscc, year, date.today(), ruleset_ids={"T-srdi"})
    async with sf() as s, s.begin():
        await evaluate_and_store(s, uscc, year, date.today(), ruleset_ids={"T-district-srdi"})
    async with running_service("evaluation") as (_, client):
        r = await client.post("/api/v1/applications", json={"uscc": uscc, "tier": "srdi", "batch_year": 2026},
                              headers=COUNTY)
        assert r.status_code == 201, r.text
        province_app = r.json()
        assert province_app["level"] == "province" and province_app["ruleset_id"] == "T-srdi"
        assert province_app["evaluation"]["ruleset_id"] == "T-srdi"
        r = await client.get(f"/api/v1/applications/{province_app['id']}", headers=COUNTY)
        assert r.json()["ruleset_id"] == "T-srdi" and r.json()["evaluation"]["ruleset_id"] == "T-srdi"
        r = await client.post("/api/v1/applications",
                              json={"uscc": uscc, "tier": "srdi", "level": "county", "batch_year": 2027},
                              headers=COUNTY)
        assert r.status_code == 201, r.text
        assert r.json()["ruleset_id"] == "T-district-srdi"
        assert r.json()["evaluation"]["ruleset_id"] == "T-district-srdi"


async def test_steps_that_would_be_refused_are_not_offered(sf: async_sessionmaker[AsyncSession]) -> None:
    """小巨人 (T-giant needs a valid 专精特新 title): at the deciding step approval is not offered while the
    title is missing, and the announcement is not offered once the title has been revoked."""
    uscc = await add_enterprise(sf)
    async with running_service("evaluation") as (_, client):
        r = await client.post("/api/v1/applications",
                              json={"uscc": uscc, "tier": "little_giant", "batch_year": 2026}, headers=NOMINATOR)
        assert r.status_code == 201, r.text
        app = r.json()
        assert app["ruleset_id"] == "T-giant"
        # early stages do not check the prerequisite (a title may be obtained meanwhile)
        assert app["unmet_prerequisites"] is None and app["allowed_decisions"]["review_county"] == [
            "approved", "rejected", "returned"]
        for stage, h in (("county", COUNTY), ("city", CITY), ("province", PROVINCE)):
            r = await client.post(f"/api/v1/applications/{app['id']}/reviews",
                                  json={"stage": stage, "decision": "approved"}, headers=h)
            assert r.status_code == 200, r.text
        view = r.json()
        assert view["state"] == "province_recommended" and "record_national" in view["allowed_actions"]
        reviews = [h for h in view["history"] if h["action"].startswith("review_")]
        assert len(reviews) == 3 and {h["ruleset_id"] for h in reviews} == {"T-giant"}  # each under the mapping
        assert view["allowed_decisions"]["record_national"] == ["rejected", "returned"]
        assert view["unmet_prerequisites"] and "专精特新" in view["unmet_prerequisites"][0]
        r = await client.post(f"/api/v1/applications/{app['id']}/reviews",
                              json={"stage": "national", "decision": "approved"}, headers=PROVINCE_B)
        assert r.status_code == 409
        today = date.today()
        title = await add_title(sf, uscc, "srdi", today - timedelta(days=10), today + timedelta(days=1000))
        view = (await client.get(f"/api/v1/applications/{app['id']}", headers=PROVINCE)).json()
        assert view["allowed_decisions"]["record_national"] == ["approved", "rejected", "returned"]
        assert view["unmet_prerequisites"] == []
        r = await client.post(f"/api/v1/applications/{app['id']}/reviews",
                              json={"stage": "national", "decision": "approved"}, headers=PROVINCE_B)
        assert r.status_code == 200 and r.json()["state"] == "publicity"
        assert "announce" in r.json()["allowed_actions"]
        # the 专精特新 title is revoked during publicity: announcing would be refused, so it is not offered
        async with sf() as s, s.begin():
            await s.execute(update(Recognition).where(Recognition.id == title).values(status="revoked"))
        view = (await client.get(f"/api/v1/applications/{app['id']}", headers=PROVINCE)).json()
        assert "announce" not in view["allowed_actions"] and view["unmet_prerequisites"]
        day = date.fromisoformat(view["publicity_ends_on"]) + timedelta(days=1)
        r = await client.post(f"/api/v1/applications/{app['id']}/announce",
                              json={"announced_on": day.isoformat()}, headers=PROVINCE)
        assert r.status_code == 409 and r.json()["unmet_prerequisites"]
