"""Request and response models of the monitor API (the report shapes live in ``domain.reports``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.monitor.domain.reports import (
    Attainment,
    CommissionerLoad,
    Forecast,
    Funnel,
    Money,
    Notices,
    Recognitions,
    RegionRef,
    YearOnYear,
)

__all__ = ["Attainment", "CommissionerLoad", "EnterpriseView", "FeedEvent", "FeedPage", "Forecast", "Funnel",
           "Money", "Notices", "Recognitions", "RegionRef", "RegionTreeView", "YearOnYear"]


class FeedEvent(BaseModel):
    cursor: int = Field(description="游标 (单调递增)")
    id: str = Field(description="事件 id (ce_id)")
    type: str
    source: str
    subject: str = Field(description="统一社会信用代码 (USCC)")
    regioncode: str | None
    time: datetime
    correlationid: str | None
    data: dict[str, Any]


class FeedPage(BaseModel):
    events: list[FeedEvent]
    next_cursor: int = Field(description="下一页从此游标之后读取 (after=)")


class RegionTreeView(BaseModel):
    region: RegionRef
    breadcrumbs: list[RegionRef]
    children: list[RegionRef]


class EnterpriseView(BaseModel):
    uscc: str
    name: str | None
    region: RegionRef | None
    titles: list[dict[str, Any]] = Field(description="称号 (有效、到期、撤销)")
    evaluations: list[dict[str, Any]] = Field(description="最近评价结果 (按梯度,含差距)")
    applications: list[dict[str, Any]]
    entitlements: list[dict[str, Any]] = Field(description="奖补")
    commissioner: dict[str, Any] | None = Field(description="服务专员")
    events: list[FeedEvent] = Field(description="该企业的全部事件 (含通知、专员变动)")


def feed_event(row: dict[str, Any]) -> FeedEvent:
    return FeedEvent(cursor=row["cursor"], id=row["event_id"], type=row["type"], source=row["source"],
                     subject=row["subject"], regioncode=row["region_code"], time=row["time"],
                     correlationid=row["correlation_id"], data=row["payload"])
