"""One pure ASGI middleware in front of every service: request context, bounded bodies, NUL refusal, rate limits.

Per request it costs a few dict lookups: it sets the request/correlation ids, the traceparent and the USCC of
the path into context (logs, audit rows and events carry them), adds ``X-Request-ID`` to the response and logs
one line. Only when there is something to look at does it do more:

- a **body** is counted while it streams to the app; past the route's limit (``body_limit`` on the route, else
  ``Settings.body_limit``, 1 MiB) it answers 413 at once (a declared ``Content-Length`` over the limit before
  the app runs) and the app sees a disconnect, so a huge body is neither buffered nor parsed;
- **U+0000**, which PostgreSQL text and jsonb cannot store, is refused as a 422 naming the field: in the path
  (by the route's parameter name), the query, a urlencoded form, or a JSON body (``\\u0000``, found while
  streaming; only then is the body decoded to name the field);
- **rate limits**: a token bucket per bearer token and per client address (``Settings.rate_limit_*``; 0 = off)
  answers 429 with ``Retry-After``; health, readiness and metrics are never limited;
- **metrics**: ``http_requests_total`` and ``http_request_duration_seconds`` per route template, method and
  status class (what prometheus-fastapi-instrumentator exported, without its per-request route search).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import Counter, Histogram

from shared.context import correlation_id_var, request_id_var, traceparent_var, uscc_var

log = logging.getLogger("zjtx.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_LIMIT_KEY = "x-body-limit"
NUL_MESSAGE = "不能包含空字符 U+0000 (NUL not allowed)"
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_USCC_IN_PATH = re.compile(r"/enterprises/([0-9A-HJ-NPQRTUWXY]{18})(?:/|$)")
_JSON_NUL = b"\\u0000"

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "handler", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["method", "handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}
# the labelled children, found once per (method, route, status class): labels() takes a lock and builds a key
_COUNTED: dict[tuple[str, str, str], Any] = {}
_TIMED: dict[tuple[str, str], Any] = {}

# Request ids as long as a uuid4's hex, without a urandom call per request: 10 random bytes per process and a count.
_RID_PREFIX = os.urandom(10).hex()
_RID_COUNT = itertools.count(1)


def new_request_id() -> str:
    return f"{_RID_PREFIX}{next(_RID_COUNT) & 0xFFFFFFFFFFFF:012x}"


def body_limit(max_bytes: int) -> dict[str, Any]:
    """Route-level body limit: ``@router.post("/imports", openapi_extra=body_limit(51 * 2**20))``."""
    return {BODY_LIMIT_KEY: max_bytes}


def nul_field(value: Any, path: str = "") -> str | None:
    """Dotted path of the first string (or key) in a decoded JSON value that holds U+0000."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        sub = f"{path}.{key}" if path else str(key)
        if "\x00" in str(key):
            return sub
        if (hit := nul_field(item, sub)) is not None:
            return hit
    return None


class TokenBuckets:
    """In-process token buckets: ``rate`` requests per second, bursts up to ``burst``, one bucket per key."""

    MAX_KEYS = 50_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._buckets: dict[Any, list[float]] = {}

    def take(self, key: Any, now: float) -> float:
        """0 if a request may pass (and count it), else the seconds until one may."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._sweep(now)
            self._buckets[key] = [self.burst - 1, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return (1 - tokens) / self.rate
        bucket[0] = tokens - 1
        return 0.0

    def _sweep(self, now: float) -> None:
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.MAX_KEYS:  # all busy: forget the oldest half
            for key in list(self._buckets)[: self.MAX_KEYS // 2]:
                del self._buckets[key]


def problem_bytes(status: int, title: str, detail: str, path: str, **extensions: Any) -> bytes:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail,
                            "instance": path}
    if rid := request_id_var.get():
        body["request_id"] = rid
    body.update(extensions)
    return json.dumps(body, ensure_ascii=False).encode()


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _compile(template: str) -> re.Pattern[str]:
    pattern, last = "", 0
    for m in _PARAM.finditer(template):
        pattern += re.escape(template[last:m.start()]) + f"(?P<{m.group(1)}>[^/]*)"
        last = m.end()
    return re.compile("^" + pattern + re.escape(template[last:]) + "$")


class HttpGuard:
    """The middleware (see the module docstring). ``openapi`` returns the app's OpenAPI document; it is read
    once, when a body is over the default limit or a path holds NUL, to find the route's limit (``x-body-limit``
    of the operation) or the name of the path parameter."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        openapi: Callable[[], dict[str, Any]],
        body_limit: int = 1 << 20,
        rate_ip: float = 0,
        burst_ip: int = 0,
        rate_token: float = 0,
        burst_token: int = 0,
        trust_forwarded: bool = False,
    ) -> None:
        self.app = app
        self.openapi = openapi
        self._table: list[tuple[re.Pattern[str], dict[str, int | None]]] | None = None
        self.body_limit = body_limit
        self.by_ip = TokenBuckets(rate_ip, burst_ip or int(rate_ip * 2)) if rate_ip > 0 else None
        self.by_token = TokenBuckets(rate_token, burst_token or int(rate_token * 2)) if rate_token > 0 else None
        self.trust_forwarded = trust_forwarded

    # ------------------------------------------------------------------ helpers

    def _routes(self) -> list[tuple[re.Pattern[str], dict[str, int | None]]]:
        if self._table is None:
            table = []
            for template, operations in self.openapi().get("paths", {}).items():
                limits = {method.upper(): op.get(BODY_LIMIT_KEY) for method, op in operations.items()
                          if isinstance(op, dict)}
                table.append((_compile(template), limits))
            self._table = table
        return self._table

    def _route(self, scope: Scope) -> tuple[re.Match[str], int | None] | None:
        method = scope["method"]
        for pattern, limits in self._routes():
            if method in limits and (m := pattern.match(scope["path"])):
                return m, limits[method]
        return None

    def _limit_for(self, scope: Scope) -> int:
        found = self._route(scope)
        if found is not None and found[1] is not None:
            return int(found[1])
        return self.body_limit

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _nul_in_target(self, scope: Scope) -> str | None:
        """The name of a path parameter or query parameter holding U+0000, "" if only unnamed, None if none."""
        query: bytes = scope.get("query_string", b"")
        if query and (b"%00" in query or b"\x00" in query):
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    return name
        if "\x00" in scope["path"]:
            found = self._route(scope)
            if found is not None:
                for name, value in found[0].groupdict().items():
                    if "\x00" in value:
                        return name
            return "path"
        return None

    def _client(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        if self.trust_forwarded and (real := headers.get(b"x-real-ip")):
            return real.decode("latin-1")
        client = scope.get("client")
        return client[0] if client else ""

    # ------------------------------------------------------------------ the middleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid_raw = headers.get(b"x-request-id")
        rid = rid_raw.decode("latin-1") if rid_raw else new_request_id()
        request_id_var.set(rid)
        corr = headers.get(b"x-correlation-id")
        correlation_id_var.set(corr.decode("latin-1") if corr else rid)
        tp = headers.get(b"traceparent")
        traceparent_var.set(tp.decode("latin-1") if tp else None)
        path: str = scope["path"]
        found = _USCC_IN_PATH.search(path) if "/enterprises/" in path else None
        uscc_var.set(found.group(1) if found else None)
        started = time.perf_counter()
        status_box = [0]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self._handle(scope, receive, send_with_id, headers, path)
        finally:
            if path not in UNLIMITED_PATHS:
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                handler = getattr(route, "path_format", None) or getattr(route, "path", None) or "none"
                method = scope["method"]
                counted = (method, handler, _STATUS_CLASS.get(status_box[0] // 100, "none"))
                if (counter := _COUNTED.get(counted)) is None:
                    counter = _COUNTED.setdefault(counted, HTTP_REQUESTS.labels(*counted))
                counter.inc()
                if (timer := _TIMED.get(counted[:2])) is None:
                    timer = _TIMED.setdefault(counted[:2], HTTP_DURATION.labels(method, handler))
                timer.observe(elapsed)
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        "request",
                        extra={"method": method, "path": path, "status": status_box[0],
                               "ms": round(elapsed * 1000, 1)},
                    )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], path: str) -> None:
        if path not in UNLIMITED_PATHS and (self.by_ip is not None or self.by_token is not None):
            now = time.monotonic()
            wait = 0.0
            if self.by_token is not None and (authz := headers.get(b"authorization")):
                wait = self.by_token.take(authz, now)
            if not wait and self.by_ip is not None:
                wait = self.by_ip.take(self._client(scope, headers), now)
            if wait:
                retry = str(max(1, math.ceil(wait)))
                body = problem_bytes(429, "请求过多 (Too Many Requests)",
                                     f"请求过于频繁, 请 {retry} 秒后重试 (rate limit exceeded)", path)
                await self._answer(send, 429, body, [(b"retry-after", retry.encode())])
                return
        if (field := self._nul_in_target(scope)) is not None:
            await self._answer(send, 422, self._nul_problem(field, path))
            return
        declared = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"")
        if declared in (None, b"0") and not chunked:
            await self.app(scope, receive, send)  # no body: nothing to count or scan
            return
        limit = self.body_limit
        try:
            length = int(declared) if declared is not None else -1
        except ValueError:
            length = -1
        if length > limit:
            limit = self._limit_for(scope)
            if length > limit:
                await self._answer(send, 413, self._too_large(limit, path))
                return
        await self._stream(scope, receive, send, headers, path, limit)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], path: str, limit: int
    ) -> None:
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        scan_json = not content_type.startswith((b"multipart/", b"application/x-www-form-urlencoded"))
        scan_form = content_type == b"application/x-www-form-urlencoded"
        state = {"seen": 0, "limit": limit, "nul": False, "answered": False}
        chunks: list[bytes] = []
        tail = b""

        async def guarded_receive() -> Message:
            nonlocal tail
            if state["answered"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk: bytes = message.get("body", b"")
            state["seen"] += len(chunk)
            if state["seen"] > state["limit"]:
                if state["limit"] == self.body_limit:
                    state["limit"] = self._limit_for(scope)
                if state["seen"] > state["limit"]:
                    state["answered"] = True
                    await self._answer(send, 413, self._too_large(state["limit"], path))
                    return {"type": "http.disconnect"}
            if scan_json or scan_form:
                chunks.append(chunk)
                window = tail + chunk
                if (scan_json and _JSON_NUL in window) or (scan_form and (b"%00" in window or b"\x00" in window)):
                    state["nul"] = True
                tail = window[-5:]
            if state["nul"] and not message.get("more_body", False):
                field = self._nul_body_field(b"".join(chunks), scan_form)
                if field is not None:
                    state["answered"] = True
                    await self._answer(send, 422, self._nul_problem(field, path))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not state["answered"]:
                await send(message)

        await self.app(scope, guarded_receive, guarded_send)

    @staticmethod
    def _nul_body_field(body: bytes, form: bool) -> str | None:
        if form:
            for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    return name
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None  # not JSON: the route's body validation answers
        found = nul_field(data)
        return None if found is None else found or "body"

    @staticmethod
    def _nul_problem(field: str, path: str) -> bytes:
        return problem_bytes(422, "数据校验失败 (Unprocessable Content)", f"{field}: {NUL_MESSAGE}", path,
                             errors=[{"field": field, "message": NUL_MESSAGE}])

    @staticmethod
    def _too_large(limit: int, path: str) -> bytes:
        size = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit} 字节"
        return problem_bytes(413, "请求过大 (Payload Too Large)", f"请求体超过上限 {size} (request body too large)",
                             path, errors=[{"field": "body", "message": f"请求体超过上限 {size}"}])
