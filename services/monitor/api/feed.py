"""GET /api/v1/feed (cursor pages, long-poll) and /api/v1/feed/stream (Server-Sent Events)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from services.monitor.api.deps import ReaderDep, RuntimeDep, in_jurisdiction
from services.monitor.api.schemas import FeedPage, feed_event
from services.monitor.app import feed
from services.monitor.config import monitor_settings
from shared.events.catalog import EVENT_TYPES
from shared.problems import field_error

router = APIRouter(prefix="/api/v1/feed", tags=["feed 事件订阅"])

AfterQuery = Annotated[int, Query(ge=0, description="只返回游标大于此值的事件")]
TypesQuery = Annotated[str | None, Query(max_length=2000, description="事件类型,逗号分隔")]
RegionQuery = Annotated[str | None, Query(description="区划代码 (须在令牌辖区内;默认整个辖区)")]


def _types(types: str | None) -> list[str]:
    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise field_error("types", f"未知事件类型: {', '.join(unknown[:5])}")
    return wanted


@router.get("", response_model=FeedPage, summary="按辖区订阅事件 (游标分页,可长轮询)")
async def get_feed(
    principal: ReaderDep,
    runtime: RuntimeDep,
    after: AfterQuery = 0,
    types: TypesQuery = None,
    region: RegionQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="每页条数")] = 100,
    wait: Annotated[float, Query(ge=0, le=60, description="无新事件时最多等待秒数 (长轮询)")] = 0,
) -> FeedPage:
    code = in_jurisdiction(principal, region) if region else None
    rows = await feed.read(runtime.session_factory, signal=feed.signal_of(runtime),
                           territory=feed.visible_territory(principal, code), after=after,
                           limit=limit, types=_types(types), wait=min(wait, monitor_settings().max_wait_seconds))
    return FeedPage(events=[feed_event(r) for r in rows], next_cursor=rows[-1]["cursor"] if rows else after)


@router.get("/stream", response_class=StreamingResponse, summary="按辖区订阅事件 (Server-Sent Events)",
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_feed(
    principal: ReaderDep,
    runtime: RuntimeDep,
    after: AfterQuery = 0,
    types: TypesQuery = None,
    region: RegionQuery = None,
    last_event_id: Annotated[str | None, Header(description="断线重连时浏览器送回的最后游标")] = None,
) -> StreamingResponse:
    code = in_jurisdiction(principal, region) if region else None
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after

    async def events():  # type: ignore[no-untyped-def]
        async for item in feed.follow(runtime.session_factory, signal=feed.signal_of(runtime),
                                      territory=feed.visible_territory(principal, code), after=start,
                                      types=_types(types)):
            if runtime.stopping.is_set():
                return
            if item is None:
                yield b": keep-alive\n\n"
                continue
            cursor, row = item
            data = orjson.dumps(feed_event(row).model_dump(mode="json"))
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (cursor, row["type"].encode(), data)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
