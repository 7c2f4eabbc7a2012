"""Demo data: 服务专员 for 余杭、萧山 (county), 杭州 (city), 丽水 (city) and Lishui's counties (idempotent), and the
waits that keep the demo's notices the same on every load."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert

from services.notification.db.models import backbone, commissioners
from services.notification.events.contracts import EVALUATION_COMPLETED, POLICY_PUBLISHED
from shared.db import create_engine, make_session_factory
from shared.demo import wait_for_events
from shared.services import DemoPrincipal
from shared.settings import Settings

# (region, level, display name of the area)
DEMO_AREAS: tuple[tuple[str, str, str], ...] = (
    ("330110", "county", "余杭区"),
    ("330109", "county", "萧山区"),
    ("330100", "city", "杭州市"),
    ("331100", "city", "丽水市"),
    ("331102", "county", "莲都区"),
    ("331121", "county", "青田县"),
    ("331122", "county", "缙云县"),
    ("331123", "county", "遂昌县"),
    ("331124", "county", "松阳县"),
    ("331125", "county", "云和县"),
    ("331126", "county", "庆元县"),
    ("331127", "county", "景宁畲族自治县"),
    ("331181", "county", "龙泉市"),
)
SURNAMES = "王李张刘陈杨赵黄周吴"
GIVEN = ("伟", "芳", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰")


def demo_commissioners(size: int) -> list[dict[str, object]]:
    per_area = max(1, min(5, 1 + size // 500))
    rows: list[dict[str, object]] = []
    for i, (region, level, area) in enumerate(DEMO_AREAS):
        for j in range(per_area):
            n = i * 7 + j
            rows.append({
                "id": f"cm-{region}-{j + 1}",
                "name": f"{SURNAMES[n % len(SURNAMES)]}{GIVEN[(n // 3) % len(GIVEN)]}({area})",
                "mobile": f"139{region[2:]}{j + 1:04d}",  # 11 digits (1[3-9] + 9)
                "email": f"cm-{region}-{j + 1}@zjtx.example.cn",
                "region": region,
                "level": level,
                "capacity": 50 if level == "county" else 30,
                "active": True,
            })
    return rows


async def load_demo(settings: Settings, size: int) -> None:
    """Insert the demo commissioners (ON CONFLICT DO NOTHING, so running it twice changes nothing)."""
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            await session.execute(
                insert(commissioners).values(demo_commissioners(size)).on_conflict_do_nothing(index_elements=["id"])
            )
    finally:
        await engine.dispose()


async def await_policies(settings: Settings, size: int) -> None:
    """A demo step after finance's demo published its policies and before registry's enterprises: take the policies
    up first, so that their publication pushes reach the same enterprises (none of the demo's) on every load; events
    of different topics come in no fixed order (two loads differed by 1,200 policy pushes)."""
    await wait_for_events(settings, backbone, POLICY_PUBLISHED, 1, wait_seconds=30, steady=0.3)


async def settle(settings: Settings, size: int) -> None:
    """The last demo step of notification: wait until it has taken up the evaluation of every demo enterprise's
    report (the gap advice they call for is then in the inboxes)."""
    await wait_for_events(settings, backbone, EVALUATION_COMPLETED, size)


def demo_principals() -> list[DemoPrincipal]:
    """A demo commissioner of 余杭区 (its token is printed by ``make run``)."""
    return [DemoPrincipal(role="commissioner", region="330110", sub="cm-330110-1",
                          label="余杭区服务专员 (commissioner cm-330110-1)")]
