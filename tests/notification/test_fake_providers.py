"""The SMS/e-mail stand-ins: ``GET /sms`` and ``GET /emails`` filter by ``?to=`` and cap by ``?limit=``."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from services.notification.fake_providers import Mailbox


async def test_listings_filter_by_recipient_newest_first_and_limit(
    clean: Mailbox, providers: tuple[Mailbox, dict[str, Any]]
) -> None:
    conf = providers[1]
    async with httpx.AsyncClient(base_url=conf["sms_gateway_url"]) as http:
        for i in range(105):
            to = "13900000001" if i % 2 == 0 else "13900000002"
            r = await http.post("/sms", json={"to": to, "text": f"第{i}条"}, headers={"Idempotency-Key": f"k{i}"})
            assert r.status_code == 201
        for i in range(3):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "noreply@zjtx.example.cn", f"u{i % 2}@example.cn", f"邮件{i}"
            msg.set_content("正文")
            await aiosmtplib.send(msg, hostname=conf["smtp_host"], port=conf["smtp_port"], start_tls=False)

        everything = (await http.get("/sms")).json()
        assert len(everything) == 100  # default limit
        assert everything[0]["text"] == "第104条" and everything[-1]["text"] == "第5条"  # newest first
        mine = (await http.get("/sms", params={"to": "13900000002", "limit": 3})).json()
        assert [m["text"] for m in mine] == ["第103条", "第101条", "第99条"]
        assert (await http.get("/sms", params={"to": "13900000009"})).json() == []
        assert len((await http.get("/sms", params={"limit": 10000})).json()) == 105
        for bad in ("0", "-1", "abc", "10001"):
            r = await http.get("/sms", params={"limit": bad})
            assert r.status_code == 400 and "limit" in r.json()["error"]

        mails = (await http.get("/emails", params={"to": "u0@example.cn"})).json()
        assert [m["subject"] for m in mails] == ["邮件2", "邮件0"]
        assert [m["subject"] for m in (await http.get("/emails", params={"limit": 1})).json()] == ["邮件2"]
