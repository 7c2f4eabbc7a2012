"""Error texts a newcomer reads (issue 15 item 9) and the offline API docs (issue 15 item 10)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.harness import auth
from tests.shared.app_support import build_test_app, running
from tests.shared.support import new_uscc, scratch

CITY = auth("city_official", "330100")
THINGS = "/api/v1/bbtest/things"
ENGLISH = re.compile(r"Field required|Value error|Input should|String should|value is not")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with scratch() as sc, running(build_test_app(sc.src)) as c:
        yield c


async def test_malformed_json_names_the_body(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        THINGS, content=b'{"uscc": "x", "name": ', headers={**CITY, "content-type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert [e["field"] for e in problem["errors"]] == ["body"]
    assert problem["errors"][0]["message"] == "请求体不是合法 JSON"
    assert not re.search(r"\b\d+\b", problem["detail"].split(":")[0])  # no character offset as the field


async def test_text_plain_body_gets_a_hint(client: httpx.AsyncClient) -> None:
    body = f'{{"uscc": "{new_uscc()}", "name": "杭州测试科技有限公司"}}'
    resp = await client.post(THINGS, content=body.encode(), headers={**CITY, "content-type": "text/plain"})
    assert resp.status_code == 422, resp.text
    assert "application/json" in resp.json()["detail"]
    assert "请以 application/json 发送" in resp.json()["errors"][0]["message"]


async def test_validation_messages_are_chinese(client: httpx.AsyncClient) -> None:
    resp = await client.post(THINGS, json={"name": "x" * 101}, headers=CITY)
    assert resp.status_code == 422
    errors = {e["field"]: e["message"] for e in resp.json()["errors"]}
    assert errors == {"uscc": "缺少必填字段", "name": "长度不能超过 100"}
    assert not ENGLISH.search(resp.text), resp.text
    resp = await client.post(THINGS, json={"uscc": 5, "name": ["a"]}, headers=CITY)
    assert resp.status_code == 422 and not ENGLISH.search(resp.text), resp.text
    assert {e["message"] for e in resp.json()["errors"]} == {"须为字符串"}


async def test_docs_and_redoc_load_everything_locally(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        resp = await client.get(page)
        assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", resp.text)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", resp.text)
        assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
        assert assets, resp.text
        for url in urls:
            assert not url.startswith(("http://", "https://", "//")), f"{page} loads {url} from outside"
            assert (await client.get(url)).status_code == 200, (page, url)
