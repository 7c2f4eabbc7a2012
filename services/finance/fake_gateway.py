"""A fake treasury/bank payment gateway for the dev stack and the tests (a real HTTP server).

    python -m services.finance.fake_gateway --port 8090

API (what the finance adapter uses):
- ``POST /payments`` with ``Idempotency-Key``: pays once per key; a repeated key returns the first payment
  (200, ``deduplicated: true``) instead of paying again.
- ``GET /payments/{key}``: the payment for a key, or 404.
- ``GET /statements?date=YYYY-MM-DD``: the day's payments (UTC) for reconciliation.
Fault switches (``POST /_control`` with JSON, or attributes in-process):
- ``fail_next``: answer the next N payment calls with 503 without paying;
- ``reject_next``: answer the next N calls with 422 (permanent refusal) without paying;
- ``delay_after_success``: pay, then wait this many seconds before answering (client timeout after success);
- ``answer_twice``: a repeated key answers 201 as if new (the gateway "answers twice"; still pays once).
``GET /_state`` shows what the gateway holds, for tests and for looking at a dev stack by hand::

    {"payments": [{"key", "payment_id", "instruction_id", "payee_uscc", "amount", "status": "paid",
                   "paid_at"}, …],          # one per Idempotency-Key actually paid, in payment order
     "calls": {"<Idempotency-Key>": n, …}}  # every POST /payments per key, refused ones included

A key with ``calls`` > 1 but one payment is a retry the gateway deduplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class FakeGateway:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.payments: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        self.fail_next = 0
        self.reject_next = 0
        self.delay_after_success = 0.0
        self.answer_twice = False
        self.extra_statement: list[dict[str, Any]] = []

    def reset(self) -> None:
        with self.lock:
            self.payments.clear()
            self.calls.clear()
            self.extra_statement.clear()
        self.fail_next = self.reject_next = 0
        self.delay_after_success = 0.0
        self.answer_twice = False

    @property
    def paid_count(self) -> int:
        return len(self.payments)

    async def pay(self, request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"error": "缺少 Idempotency-Key"}, status_code=400)
        body = await request.json()
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "网关暂不可用 (injected)"}, status_code=503)
            if self.reject_next > 0:
                self.reject_next -= 1
                return JSONResponse({"error": "收款账户无效 (injected rejection)"}, status_code=422)
            existing = self.payments.get(key)
            if existing is None:
                payment = {
                    "key": key,
                    "payment_id": "PAY-" + uuid.uuid4().hex[:12].upper(),
                    "instruction_id": body.get("instruction_id"),
                    "payee_uscc": body.get("payee_uscc"),
                    "amount": body.get("amount"),
                    "status": "paid",
                    "paid_at": datetime.now(UTC).isoformat(),
                }
                self.payments[key] = payment
                status, dedup = 201, False
            else:
                payment = existing
                status, dedup = (201, False) if self.answer_twice else (200, True)
            delay = self.delay_after_success
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse({**payment, "deduplicated": dedup}, status_code=status)

    async def lookup(self, request: Request) -> JSONResponse:
        with self.lock:
            payment = self.payments.get(request.path_params["key"])
        if payment is None:
            return JSONResponse({"error": "无此付款"}, status_code=404)
        return JSONResponse(payment)

    async def statement(self, request: Request) -> JSONResponse:
        day = request.query_params.get("date", "")
        with self.lock:
            items = [p for p in self.payments.values() if p["paid_at"][:10] == day]
            items += [p for p in self.extra_statement if p["paid_at"][:10] == day]
        return JSONResponse({"date": day, "items": items})

    async def control(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("reset"):
            self.reset()
        for k in ("fail_next", "reject_next", "delay_after_success", "answer_twice"):
            if k in body:
                setattr(self, k, body[k])
        return JSONResponse({"ok": True})

    async def state(self, request: Request) -> JSONResponse:
        with self.lock:
            return JSONResponse({"payments": list(self.payments.values()), "calls": dict(self.calls)})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/payments", self.pay, methods=["POST"]),
                Route("/payments/{key}", self.lookup, methods=["GET"]),
                Route("/statements", self.statement, methods=["GET"]),
                Route("/_control", self.control, methods=["POST"]),
                Route("/_state", self.state, methods=["GET"]),
                Route("/healthz", lambda r: JSONResponse({"status": "ok"}), methods=["GET"]),
            ]
        )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="zjtx fake payment gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    uvicorn.run(FakeGateway().app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
