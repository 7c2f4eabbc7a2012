"""The monitor has no demo data of its own (it archives what the other services' demo loads publish); after the
demo load, ``make run`` prints a token for its pages with their address."""

from __future__ import annotations

import os

from shared.services import DemoPrincipal, descriptor


def demo_principals() -> list[DemoPrincipal]:
    base = int(os.environ.get("ZJTX_DEV_PORT_BASE", "8000"))
    url = f"http://127.0.0.1:{base + descriptor('monitor').port_offset}/monitor"
    return [
        DemoPrincipal(role="province_official", region="330000", sub="monitor-province",
                      label=f"监测页面 (省经信厅): 打开 {url} ,粘贴此令牌登录"),
        DemoPrincipal(role="city_official", region="331100", sub="monitor-lishui",
                      label=f"监测页面 (丽水市): {url}"),
    ]
