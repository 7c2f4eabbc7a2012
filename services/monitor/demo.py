"""The monitor has no demo data of its own (it archives what the other services' demo loads publish): its demo step
waits until it has taken them up, so the pages show the whole demo once ``make run`` prints a token for them with
their address."""

from __future__ import annotations

import os

from services.monitor.db.models import backbone
from services.monitor.events.contracts import EVALUATION_COMPLETED
from shared.demo import wait_for_events
from shared.services import DemoPrincipal, descriptor
from shared.settings import Settings


async def settle(settings: Settings, size: int) -> None:
    """The monitor's demo step, last: wait until it has archived the evaluation of every demo enterprise's report
    (the forecast reads them)."""
    await wait_for_events(settings, backbone, EVALUATION_COMPLETED, size)


def demo_principals() -> list[DemoPrincipal]:
    base = int(os.environ.get("ZJTX_DEV_PORT_BASE", "8000"))
    url = f"http://127.0.0.1:{base + descriptor('monitor').port_offset}/monitor"
    return [
        DemoPrincipal(role="province_official", region="330000", sub="monitor-province",
                      label=f"监测页面 (省经信厅): 打开 {url} ,粘贴此令牌登录"),
        DemoPrincipal(role="city_official", region="331100", sub="monitor-lishui",
                      label=f"监测页面 (丽水市): {url}"),
    ]
