"""Local stand-ins for the SMS gateway (HTTP) and the mail server (SMTP), for `make run` and the tests.

    python -m services.notification.fake_providers --sms-port 8091 --smtp-port 8025

SMS gateway: ``POST /sms`` ``{"to", "text"}`` with an ``Idempotency-Key`` header → ``{"message_id", "duplicate"}``;
a repeated key returns the first answer and stores nothing (that is the dedup real gateways offer).
SMTP: a message whose ``Message-ID`` was already received is accepted (250) and not stored again — the provider
side of the notification service's contract (``services/notification/app/delivery.py``): every attempt of one
delivery carries the same key, and the provider delivers it once.
``GET /sms`` and ``GET /emails`` list what was received, newest first: ``?to=`` keeps the messages to one mobile
number (SMS) or address (e-mail, any of its recipients), ``?limit=`` caps the list (default 100, 1..10000; a
bad value answers 400). ``DELETE /sms`` / ``DELETE /emails`` clear.
``GET /_state``: what was received and what was deduplicated, per channel (``received``, ``duplicates``).
SMTP: aiosmtpd in the same event loop, keeps every message once (From, To, Subject, Message-ID, body).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("zjtx.fake_providers")


@dataclass
class Mailbox:
    sms: list[dict[str, Any]] = field(default_factory=list)
    sms_by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: list[dict[str, Any]] = field(default_factory=list)
    email_ids: set[str] = field(default_factory=set)  # Message-IDs received
    sms_fail_next: int = 0  # answer 503 to the next N requests (retry tests)
    sms_requests: int = 0
    sms_duplicates: int = 0  # repeated Idempotency-Keys answered without sending
    email_duplicates: int = 0  # repeated Message-IDs accepted without delivering

    def sms_to(self, mobile: str) -> list[dict[str, Any]]:
        return [m for m in self.sms if m["to"] == mobile]

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in self.emails if address in m["rcpt_to"]]

    def clear(self) -> None:
        self.sms.clear()
        self.sms_by_key.clear()
        self.emails.clear()
        self.email_ids.clear()
        self.sms_fail_next = 0
        self.sms_requests = 0
        self.sms_duplicates = 0
        self.email_duplicates = 0

    def state(self) -> dict[str, Any]:
        return {"sms": {"received": len(self.sms), "requests": self.sms_requests, "duplicates": self.sms_duplicates},
                "emails": {"received": len(self.emails), "duplicates": self.email_duplicates}}


DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def _listing(
    request: Request, items: list[dict[str, Any]], matches: Callable[[dict[str, Any], str], bool]
) -> JSONResponse:
    """``GET /sms`` / ``GET /emails``: newest first, ``?to=`` filter, ``?limit=`` (default 100)."""
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return JSONResponse({"error": f"limit 须为 1 到 {MAX_LIMIT} 的整数"}, status_code=400)
    to = request.query_params.get("to")
    found = [m for m in reversed(items) if to is None or matches(m, to)]
    return JSONResponse(found[: int(raw)])


def sms_app(box: Mailbox) -> Starlette:
    async def send(request: Request) -> JSONResponse:
        box.sms_requests += 1
        if box.sms_fail_next > 0:
            box.sms_fail_next -= 1
            return JSONResponse({"error": "网关繁忙"}, status_code=503)
        body = await request.json()
        if not isinstance(body, dict) or not body.get("to") or not body.get("text"):
            return JSONResponse({"error": "缺少 to 或 text"}, status_code=400)
        if not re.fullmatch(r"1\d{10}", str(body["to"])):
            return JSONResponse({"error": "手机号码无效"}, status_code=400)
        key = request.headers.get("idempotency-key") or body.get("client_ref") or uuid.uuid4().hex
        if key in box.sms_by_key:
            box.sms_duplicates += 1
            return JSONResponse({**box.sms_by_key[key], "duplicate": True})
        answer = {"message_id": f"sms-{uuid.uuid4().hex[:12]}", "duplicate": False}
        box.sms_by_key[key] = answer
        box.sms.append({"to": body["to"], "text": body["text"], "key": key, "message_id": answer["message_id"]})
        log.warning("SMS to %s: %s", body["to"], body["text"])
        return JSONResponse(answer, status_code=201)

    async def list_sms(request: Request) -> JSONResponse:
        return _listing(request, box.sms, lambda m, to: m["to"] == to)

    async def list_emails(request: Request) -> JSONResponse:
        return _listing(request, box.emails, lambda m, to: to in m["rcpt_to"])

    async def clear_all(request: Request) -> JSONResponse:
        box.clear()
        return JSONResponse({"cleared": True})

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(box.state())

    return Starlette(routes=[
        Route("/sms", send, methods=["POST"]),
        Route("/sms", list_sms, methods=["GET"]),
        Route("/emails", list_emails, methods=["GET"]),
        Route("/sms", clear_all, methods=["DELETE"]),
        Route("/emails", clear_all, methods=["DELETE"]),
        Route("/_state", state, methods=["GET"]),
    ])


class KeepHandler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = str(msg["Message-ID"] or "")
        if message_id and message_id in self.box.email_ids:
            self.box.email_duplicates += 1  # the same delivery again (a retry after a crash): delivered once
            return "250 Message-ID already accepted, not delivered again"
        if message_id:
            self.box.email_ids.add(message_id)
        body = msg.get_body(preferencelist=("plain",))
        self.box.emails.append({
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            "subject": str(msg["Subject"]),
            "message_id": message_id,
            "body": body.get_content().strip() if body is not None else "",
        })
        log.warning("email to %s: %s", envelope.rcpt_tos, msg["Subject"])
        return "250 Message accepted for delivery"


@contextlib.asynccontextmanager
async def running_providers(
    sms_port: int, smtp_port: int, host: str = "127.0.0.1", box: Mailbox | None = None
) -> AsyncIterator[Mailbox]:
    """Run both fake providers in the current event loop."""
    box = box or Mailbox()
    loop = asyncio.get_running_loop()
    handler = KeepHandler(box)
    smtp_server = await loop.create_server(lambda: SMTP(handler, hostname="zjtx-fake-smtp"), host, smtp_port)
    config = uvicorn.Config(sms_app(box), host=host, port=sms_port, log_level="warning", lifespan="off")
    http = uvicorn.Server(config)
    task = asyncio.create_task(http.serve())
    while not http.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield box
    finally:
        http.should_exit = True
        await task
        smtp_server.close()
        await smtp_server.wait_closed()


async def _main(sms_port: int, smtp_port: int, host: str) -> None:
    async with running_providers(sms_port, smtp_port, host):
        print(f"fake SMS gateway http://{host}:{sms_port}/sms, fake SMTP {host}:{smtp_port}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="本地短信网关与邮件服务器(开发/测试用)")
    parser.add_argument("--sms-port", type=int, default=8091)
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.sms_port, args.smtp_port, args.host))


if __name__ == "__main__":
    main()
