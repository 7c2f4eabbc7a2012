"""Demo data: realistic enterprises in 余杭, 萧山 and 丽水 with their latest year's indicators (which carry the two
years before: ``*_prev1``, ``*_prev2``), pools and targets.

``await load_demo(settings)`` is idempotent (deterministic seed; a second call adds nothing) and goes
through the repository, so every enterprise, indicator report and pool entry has its outbox event.
``generate_enterprise_rows`` / ``generate_indicator_rows`` make import files for benchmarks (100k on request).
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry.app import enterprises as ent_cases
from services.registry.app import indicators as ind_cases
from services.registry.app.pools import pool_moved
from services.registry.db import enterprises as ents
from services.registry.db.models import Enterprise, IndicatorRevision, PoolMembership, Target, backbone, table_of
from services.registry.db.pools import get_or_create_pool
from services.registry.db.regions import region_index
from services.registry.db.seed import region_rows, upsert_regions_stmt
from services.registry.domain.commands import EnterpriseIn
from services.registry.domain.indicators import stored_values
from services.registry.domain.uscc import CHARSET, make_uscc
from services.registry.events import contracts as ev
from shared.auth import Principal, Role
from shared.db import create_engine, make_session_factory
from shared.demo import demo_events
from shared.events.outbox import emit_many, outbox_row
from shared.indicators import IndicatorSet
from shared.services import DemoPrincipal
from shared.settings import Settings
from shared.spreadsheets import write_xlsx

SEED = 20260122
DEMO_ACTOR = Principal(sub="system:demo", role=Role.ADMIN, region="330000")

LISHUI_UNITS = ["331102", "331121", "331122", "331123", "331124", "331125", "331126", "331127", "331181", "331199"]
REGION_WEIGHTS = [("330110", 30), ("330109", 30)] + [(u, 4) for u in LISHUI_UNITS]
CITY_OF_PREFIX = {"3301": "杭州", "3311": "丽水"}
WORDS = [
    "恒达",
    "精工",
    "华鼎",
    "瑞丰",
    "永泰",
    "创新",
    "天成",
    "博远",
    "信合",
    "中科",
    "金石",
    "海纳",
    "宏图",
    "立信",
    "锐驰",
    "聚能",
    "启明",
    "融智",
    "东磁",
    "新锐",
    "卓越",
    "鼎峰",
    "安泰",
    "汇川",
    "光迅",
    "云帆",
    "远望",
    "正泰",
]
TRADES = [
    ("精密机械", "3484"),
    ("智能装备", "3562"),
    ("电子科技", "3990"),
    ("生物医药", "2710"),
    ("汽车零部件", "3670"),
    ("新材料", "3099"),
    ("仪器仪表", "4015"),
    ("医疗器械", "3581"),
    ("阀门", "3443"),
    ("轴承", "3451"),
    ("电机", "3811"),
    ("光电", "3976"),
    ("化工", "2669"),
    ("纺织", "1713"),
    ("竹木制品", "2039"),
    ("软件", "6513"),
    ("检测技术", "7452"),
]
SUFFIX = ["有限公司", "股份有限公司", "科技有限公司"]


def _code(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 31)
        out = CHARSET[r] + out
    return out


@dataclass
class DemoEnterprise:
    data: EnterpriseIn
    archetype: str
    base_revenue: Decimal


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def generate_enterprises(n: int, seed: int = SEED, offset: int = 0) -> list[DemoEnterprise]:
    """``n`` deterministic enterprises (valid USCCs, unique names)."""
    rng = random.Random(seed)
    codes = [c for c, _ in REGION_WEIGHTS]
    weights = [w for _, w in REGION_WEIGHTS]
    out: list[DemoEnterprise] = []
    names: set[str] = set()
    for i in range(offset, offset + n):
        region = rng.choices(codes, weights)[0]
        # the registration authority is the county or, for some, the city's bureau (positions 3–8)
        authority = region if region != "331199" else "331100"
        if rng.random() < 0.1:
            authority = region[:4] + "00"
        uscc = make_uscc(authority, "MA" + _code(i * 7919 + 104729, 6))
        word, (trade, industry) = rng.choice(WORDS), rng.choice(TRADES)
        name = f"{CITY_OF_PREFIX[region[:4]]}{word}{trade}{rng.choice(SUFFIX)}"
        if name in names:
            name = f"{CITY_OF_PREFIX[region[:4]]}{word}{trade}{i}号{rng.choice(SUFFIX)}"
        names.add(name)
        archetype = rng.choices(["ordinary", "innovative", "srdi", "little_giant", "near_miss"], [40, 25, 20, 8, 7])[0]
        base = {
            "ordinary": Decimal(rng.randrange(2_000_000, 30_000_000)),
            "innovative": Decimal(rng.randrange(8_000_000, 60_000_000)),
            "srdi": Decimal(rng.randrange(15_000_000, 200_000_000)),
            "little_giant": Decimal(rng.randrange(100_000_000, 400_000_000)),
            "near_miss": Decimal(rng.randrange(9_000_000, 10_000_000)),
        }[archetype]
        employees = {
            "ordinary": (10, 120),
            "innovative": (20, 200),
            "srdi": (50, 500),
            "little_giant": (150, 900),
            "near_miss": (30, 90),
        }[archetype]
        data = EnterpriseIn(
            uscc=uscc,
            name=name,
            region_code=region,
            industry_code=industry,
            founded_on=date(rng.randrange(1995, 2021), rng.randrange(1, 13), rng.randrange(1, 29)),
            employees=rng.randrange(*employees),
            operating_revenue=base,
            focus={
                "foundations": rng.sample(
                    ["core_parts", "key_materials", "advanced_process", "core_components"], k=rng.choice([0, 0, 1, 2])
                ),
                "strategic_emerging_category": rng.choice([None, 1, 2, 3, 4, 7]),
                "local_priority_industry": "医疗器械" if industry == "3581" else None,
            },
            liaison={
                "name": rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(["伟", "芳", "强", "敏", "静", "磊", "婷"]),
                "mobile": _mobile(rng),
                "email": None,
            },
        )
        out.append(DemoEnterprise(data, archetype, base))
    return out


def demo_indicators(e: DemoEnterprise, year: int, rng: random.Random) -> IndicatorSet:
    """Plausible indicators for ``year`` (its own figures plus the two years before)."""
    kind = e.archetype
    growth = {"ordinary": 1.03, "innovative": 1.12, "srdi": 1.15, "little_giant": 1.12, "near_miss": 1.04}[kind]
    age = datetime.now(UTC).year - 1 - year  # 0 for the latest year

    def rev(k: int) -> Decimal:
        factor = Decimal(str(round(growth ** -(age + k) * rng.uniform(0.97, 1.03), 4)))
        return (e.base_revenue * factor).quantize(Decimal("1.00"))

    rd_ratio = {
        "ordinary": (0.005, 0.025),
        "innovative": (0.03, 0.08),
        "srdi": (0.031, 0.09),
        "little_giant": (0.035, 0.08),
        "near_miss": (0.026, 0.0299),
    }[kind]
    r0, r1, r2 = rev(0), rev(1), rev(2)
    rd0 = (r0 * Decimal(str(round(rng.uniform(*rd_ratio), 4)))).quantize(Decimal("1.00"))
    rd1 = (r1 * Decimal(str(round(rng.uniform(*rd_ratio), 4)))).quantize(Decimal("1.00"))
    employees = e.data.employees or 50
    assets = (r0 * Decimal(str(round(rng.uniform(0.8, 2.0), 3)))).quantize(Decimal("1.00"))
    ip1 = {"ordinary": 0, "innovative": 2, "srdi": 4, "little_giant": 12, "near_miss": 1}[kind] + rng.randrange(0, 4)
    return IndicatorSet(
        operating_revenue=r0,
        operating_revenue_prev1=r1,
        operating_revenue_prev2=r2,
        main_business_revenue=(r0 * Decimal("0.93")).quantize(Decimal("1.00")),
        main_business_revenue_prev1=(r1 * Decimal("0.93")).quantize(Decimal("1.00")),
        main_business_revenue_prev2=(r2 * Decimal("0.92")).quantize(Decimal("1.00")),
        rd_expense=rd0,
        rd_expense_prev1=rd1,
        net_profit=(r0 * Decimal(str(round(rng.uniform(-0.03, 0.15), 3)))).quantize(Decimal("1.00")),
        net_profit_prev1=(r1 * Decimal(str(round(rng.uniform(-0.03, 0.15), 3)))).quantize(Decimal("1.00")),
        total_assets=assets,
        total_liabilities=(assets * Decimal(str(round(rng.uniform(0.2, 0.75), 3)))).quantize(Decimal("1.00")),
        tax_paid=(r0 * Decimal("0.04")).quantize(Decimal("1.00")),
        employees=employees,
        rd_staff=max(1, int(employees * rng.uniform(0.05, 0.3))),
        ip_class1=ip1,
        ip_class1_self_developed=min(ip1, rng.randrange(0, ip1 + 1)),
        ip_class1_high_value=min(ip1, rng.randrange(0, 3)),
        ip_class2=rng.randrange(0, 25),
        niche_years=Decimal(str(min(30, max(1, datetime.now(UTC).year - e.data.founded_on.year - age - 1))))
        if e.data.founded_on
        else None,
        market_share_pct=Decimal(str(round(rng.uniform(1, 30 if kind == "little_giant" else 12), 2))),
        digital_level=rng.choice([1, 2, 2, 3, 3, 4]),
        info_system_core_business=rng.random() < 0.8,
        quality_system_certified=rng.random() < (0.9 if kind != "ordinary" else 0.5),
        own_brand=rng.random() < 0.7,
        standards_participated=rng.randrange(0, 4 if kind != "little_giant" else 8),
        rd_institution_level=rng.choice(["none", "below_city", "city", "province"]) if kind != "ordinary" else "none",
        strategic_emerging_category=e.data.focus.strategic_emerging_category,
        six_foundations=bool(e.data.focus.foundations),
        land_area_mu=Decimal(str(rng.randrange(5, 120))),
        energy_tce=Decimal(str(rng.randrange(100, 8000))),
        cnc_rate_pct=Decimal(str(round(rng.uniform(20, 85), 2))),
        major_accident_3y=rng.random() < 0.01,
        serious_dishonesty=False,
        abnormal_operation=rng.random() < 0.02,
    )


# 浙江省/市/区 targets from domain.md §0b. The city programme (003_*) names no city: modelled as 330100 杭州市.
TARGETS: list[tuple[str, str, str, str, int, int, str]] = [
    # region, track, measure, level, year, target, source
    ("330000", "innovative", "recognised", "any", 2025, 50000, "浙政办发2022 (004)"),
    ("330000", "srdi", "recognised", "province", 2025, 10000, "浙政办发2022 (004)"),
    ("330000", "hidden_champion", "recognised", "province", 2025, 500, "浙政办发2022 (004)"),
    ("330000", "little_giant", "recognised", "national", 2025, 1000, "浙政办发2022 (004)"),
    ("330000", "single_champion", "recognised", "national", 2025, 130, "浙政办发2022 (004)"),
    ("330100", "innovative", "recognised", "any", 2025, 5000, "市级计划 (003, 城市未具名, 按杭州建模)"),
    ("330100", "srdi", "recognised", "any", 2025, 2500, "市级计划 (003)"),
    ("330100", "srdi", "recognised", "province", 2025, 500, "市级计划 (003)"),
    ("330100", "little_giant", "recognised", "national", 2025, 100, "市级计划 (003)"),
    ("330100", "single_champion", "recognised", "national", 2025, 30, "市级计划 (003)"),
    ("330109", "innovative", "pool", "any", 2025, 10000, "萧山区三年行动 (002)"),
    ("330109", "srdi", "pool", "any", 2025, 1200, "萧山区三年行动 (002)"),
    ("330110", "srdi", "pool", "county", 2024, 500, "余杭区意见 (000)"),
    ("330110", "srdi", "recognised", "province", 2024, 100, "余杭区意见 (000)"),
    ("330110", "hidden_champion", "recognised", "province", 2024, 10, "余杭区意见 (000)"),
    ("330110", "little_giant", "recognised", "national", 2024, 20, "余杭区意见 (000)"),
    ("331100", "hidden_champion", "pool", "city", 2020, 100, "丽政办发〔2018〕61号 (001)"),
    ("331100", "hidden_champion", "recognised", "city", 2020, 30, "丽政办发〔2018〕61号 (001)"),
]
# The ten other cities publish no 2025 targets in the sources: for the demo the province's 2025 创新型 and 省级专精特新
# targets are split among them by a modelled share (not a published figure; the source says so), so the province
# page shows attainment for all 11 cities. A jurisdiction replaces them with its own through the targets API.
DEMO_CITY_SHARES = {
    "330200": 18, "330300": 12, "330400": 9, "330500": 6, "330600": 9,
    "330700": 9, "330800": 3, "330900": 2, "331000": 9, "331100": 3,
}
for _city, _pct in DEMO_CITY_SHARES.items():
    _src = f"演示分解: 省2025目标 × {_pct}% (非公布数字)"
    TARGETS += [
        (_city, "innovative", "recognised", "any", 2025, 50000 * _pct // 100, _src),
        (_city, "srdi", "recognised", "province", 2025, 10000 * _pct // 100, _src),
    ]
# 丽水 decomposition: 省级专精特新入库 and 省级隐形冠军入库 by unit (2020 / 2018); 开发区 = zone 331199
LISHUI = {
    "331199": (80, 30, 2, None),
    "331102": (80, 15, 2, 1),
    "331181": (110, 30, 2, 1),
    "331121": (150, 40, 3, 1),
    "331125": (70, 10, 2, 1),
    "331126": (70, 10, 2, 1),
    "331122": (150, 40, 3, None),
    "331123": (70, 15, 2, 1),
    "331124": (70, 15, 2, 1),
    "331127": (50, 5, 1, None),
}
for _unit, (_s20, _s18, _h20, _h18) in LISHUI.items():
    _src = "丽政办发〔2018〕61号 (001) 目标分解"
    TARGETS += [
        (_unit, "srdi", "pool", "province", 2020, _s20, _src),
        (_unit, "srdi", "pool", "province", 2018, _s18, _src),
        (_unit, "hidden_champion", "pool", "province", 2020, _h20, _src),
    ]
    if _h18 is not None:
        TARGETS.append((_unit, "hidden_champion", "pool", "province", 2018, _h18, _src))
TARGETS += [
    ("331100", "srdi", "pool", "province", 2020, 900, "丽政办发〔2018〕61号 合计"),
    ("331100", "srdi", "pool", "province", 2018, 210, "丽政办发〔2018〕61号 合计"),
    ("331100", "hidden_champion", "pool", "province", 2020, 21, "丽政办发〔2018〕61号 合计"),
    ("331100", "hidden_champion", "pool", "province", 2018, 7, "丽政办发〔2018〕61号 合计"),
]


async def load_targets(session: AsyncSession) -> None:
    rows = [
        dict(zip(("region_code", "track", "measure", "level", "year", "target", "source"), t, strict=True))
        for t in TARGETS
    ]
    new = (await session.execute(
        insert(Target).values(rows).on_conflict_do_nothing().returning(*(getattr(Target, k) for k in rows[0]))
    )).mappings().all()
    # the monitor's attainment reads targets from these events (a second load inserts nothing, emits nothing)
    await emit_many(session, backbone, [
        outbox_row(backbone, ev.TARGET_SET, t["region_code"], ev.TargetSet(**t), regioncode=t["region_code"])
        for t in new
    ])


async def load_demo(settings: Settings, size: int = 2000) -> None:
    """Load ``size`` demo enterprises (idempotent), the regions and the targets. Their indicators come in a later
    step (:func:`load_indicators`), after evaluation's demo history."""
    async with _demo_session(settings) as factory:
        await _load(factory, size)


async def load_indicators(settings: Settings, size: int = 2000) -> None:
    """The latest year's indicators of the demo enterprises and their pools (idempotent: only enterprises with no
    report of that year yet). A later demo step than the enterprises: evaluation's history (titles since 2022) is
    decided before, so the evaluations of these reports — and the gap advice they bring — see the titles held,
    and the reports are evaluated while the other services take up the history."""
    demo = generate_enterprises(size)
    last = datetime.now(UTC).year - 1
    # One report per enterprise, the latest year's: evaluation evaluates each report it is told of, so the
    # years before (in that report as *_prev1/_prev2) would triple the start-up's evaluations and send the
    # gap advice of a tier once per year. The earlier years are still drawn so the figures stay the same.
    rng = random.Random(SEED + 1)
    values: dict[str, dict[str, Any]] = {}
    for d in demo:
        for year in (last - 2, last - 1):
            demo_indicators(d, year, rng)
        values[d.data.uscc] = stored_values(demo_indicators(d, last, rng))
    async with _demo_session(settings) as factory:
        # in a few transactions, so evaluation takes up the first reports (and the services after it their
        # evaluations) while the next are written: the figures are the same, the start-up a pipeline
        for start in range(0, len(demo), REPORT_CHUNK):
            async with factory() as session, session.begin():
                await _report(session, demo[start:start + REPORT_CHUNK], values, last)


@asynccontextmanager
async def _demo_session(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        # the demo's events: notification keeps what they cause (policy pushes…) in the inbox, no SMS on start
        with demo_events("registry"):
            yield make_session_factory(engine)
    finally:
        await engine.dispose()


async def _load(factory: async_sessionmaker[AsyncSession], size: int) -> None:
    """Regions, targets and, once, the enterprises."""
    async with factory() as session, session.begin():
        await session.execute(upsert_regions_stmt(), region_rows())
        await load_targets(session)
        regions = await region_index(session)
        demo = generate_enterprises(size)
        existing = await ents.existing_usccs(session, [d.data.uscc for d in demo])
        new = [d for d in demo if d.data.uscc not in existing]
        if new:
            rows = [ent_cases.normalise_new(d.data, DEMO_ACTOR, regions)[0] for d in new]
            await ent_cases.insert_enterprises(session, DEMO_ACTOR, rows)


REPORT_CHUNK = 400


async def _report(session: AsyncSession, demo: list[DemoEnterprise], values: dict[str, dict[str, Any]],
                  last: int) -> None:
    """The ``last`` year's report of each of ``demo`` that has none (``values`` by USCC), and its pool entries."""
    stored = {e.uscc: e for e in (await session.execute(
        select(Enterprise).where(Enterprise.uscc.in_([d.data.uscc for d in demo])).with_for_update()
    )).scalars()}
    reported = set((await session.execute(select(IndicatorRevision.uscc).where(
        IndicatorRevision.uscc.in_(list(stored)), IndicatorRevision.year == last))).scalars())
    new = [d for d in demo if d.data.uscc in stored and d.data.uscc not in reported]
    if new:
        reports = [ind_cases.IndicatorReport(stored[d.data.uscc], last, "self_report", values[d.data.uscc])
                   for d in new]
        await ind_cases.report_indicators(session, DEMO_ACTOR, DEMO_ACTOR.sub, reports)
        rows = [{"uscc": d.data.uscc, "region_code": stored[d.data.uscc].region_code} for d in new]
        await _demo_pools(session, new, rows, last)


async def _demo_pools(session: AsyncSession, new: list[DemoEnterprise], rows: list[dict[str, Any]], year: int) -> None:
    """srdi-grade firms in their county's 专精特新 pool, little-giant grade also in the province pool."""
    members: list[dict[str, Any]] = []
    events: list[tuple[str, str, Any, str | None]] = []
    entered = date(year, 6, 30)
    for d, row in zip(new, rows, strict=True):
        wanted: list[tuple[str, str, str]] = []
        if d.archetype in ("srdi", "little_giant", "near_miss"):
            wanted.append(("county", row["region_code"], "srdi"))
        if d.archetype == "innovative":
            wanted.append(("county", row["region_code"], "innovative"))
        if d.archetype == "little_giant":
            wanted.append(("province", "330000", "srdi"))
        for level, region, track in wanted:
            pool = await get_or_create_pool(session, level, region, track)
            members.append(
                {
                    "pool_id": pool.id,
                    "uscc": row["uscc"],
                    "year": year,
                    "basis": "rule_result",
                    "reason": "演示数据",
                    "entered_on": entered,
                    "entered_by": DEMO_ACTOR.sub,
                }
            )
            events.append(
                (
                    ev.POOL_ENTERED,
                    row["uscc"],
                    pool_moved(row["uscc"], row["region_code"], pool, year, "rule_result"),
                    row["region_code"],
                )
            )
    for i in range(0, len(members), 2000):
        await session.execute(table_of(PoolMembership).insert(), members[i : i + 2000])
    await ent_cases.publish(session, events)


# ---------------------------------------------------------------- import files for benchmarks

ENTERPRISE_COLUMNS = [
    "统一社会信用代码",
    "企业名称",
    "所属区划",
    "行业代码",
    "成立日期",
    "从业人员",
    "营业收入(元)",
    "联络员姓名",
    "联络员手机",
]


def generate_enterprise_rows(n: int, seed: int = SEED + 7, offset: int = 500_000) -> list[list[Any]]:
    """``n`` enterprise import rows (Chinese headers first); distinct from the demo set by ``offset``."""
    out: list[list[Any]] = [list(ENTERPRISE_COLUMNS)]
    for d in generate_enterprises(n, seed, offset):
        e = d.data
        out.append(
            [
                e.uscc,
                e.name,
                e.region_code,
                e.industry_code,
                e.founded_on.isoformat() if e.founded_on else "",
                e.employees,
                str(e.operating_revenue),
                e.liaison.name if e.liaison else "",
                e.liaison.mobile if e.liaison else "",
            ]
        )
    return out


def to_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[list[Any]]) -> bytes:
    return write_xlsx("导入", rows)


async def count_enterprises(session: AsyncSession) -> int:
    return len((await session.scalars(select(Enterprise.uscc))).all())


def demo_principals() -> list[DemoPrincipal]:
    """An enterprise user of the first demo enterprise (its token is printed by ``make run``)."""
    ent = generate_enterprises(1)[0].data
    return [DemoPrincipal(role="enterprise", region=ent.region_code, uscc=ent.uscc, label=f"企业 {ent.name}")]
