"""Token claims are checked against the GB/T 2260 region tree and the role (issue 16 item 5): a region that is
not a known 6-digit code is refused (401), a known code at the wrong level for the role is refused (403), and
jurisdiction is computed from the tree, so LIKE metacharacters in a claim can never widen it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from shared.auth import Principal, Role, region_covers
from shared.regions import region_tree
from shared.settings import DEV_JWT_SECRET
from tests.harness import auth
from tests.shared.app_support import build_test_app, running
from tests.shared.support import new_uscc, scratch

PROBLEM = "application/problem+json"
URL = "/api/v1/bbtest/regions/{}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with scratch() as sc, running(build_test_app(sc.src)) as c:
        yield c


def _raw_token(**claims: object) -> dict[str, str]:
    body = {"sub": "probe", "exp": int(time.time()) + 600, **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, DEV_JWT_SECRET, algorithm='HS256')}"}


@pytest.mark.parametrize("region", ["__0000", "33%%00", "3", "33", "", "3301", "330199", "33010６", "110105x",
                                    "330181"])
async def test_unknown_or_malformed_region_is_401(client: httpx.AsyncClient, region: str) -> None:
    resp = await client.get(URL.format("330110"), headers=_raw_token(role="county_official", region=region))
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert "region" in resp.json()["detail"] and "有效" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("role", "region"),
    [
        ("county_official", "330000"),  # a county role with the province code must not get province scope
        ("county_official", "330100"),
        ("commissioner", "330000"),  # commissioners are assigned by a city or a county, never the province
        ("city_official", "330000"),
        ("city_official", "330110"),
        ("province_official", "330100"),
        ("province_official", "330110"),
    ],
)
async def test_region_level_must_fit_the_role_403(client: httpx.AsyncClient, role: str, region: str) -> None:
    resp = await client.get(URL.format("330110"), headers=_raw_token(role=role, region=region))
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert "级代码" in resp.json()["detail"]


async def test_enterprise_needs_a_county_and_a_valid_uscc(client: httpx.AsyncClient) -> None:
    bad = [
        _raw_token(role="enterprise", region="330110"),  # no uscc
        _raw_token(role="enterprise", region="330110", uscc="91330100%"),  # malformed uscc
    ]
    for headers in bad:
        assert (await client.get(URL.format("330110"), headers=headers)).status_code == 401
    city = _raw_token(role="enterprise", region="330100", uscc=new_uscc())
    assert (await client.get(URL.format("330110"), headers=city)).status_code == 403


async def test_valid_claims_still_work(client: httpx.AsyncClient) -> None:
    for role, region, target in [
        ("county_official", "331199", "331199"),  # a programme zone is county-level
        ("city_official", "331100", "331199"),  # and lies within its city
        ("province_official", "330000", "331199"),
        ("admin", "330000", "110105"),
    ]:
        resp = await client.get(URL.format(target), headers=auth(role, region))
        assert resp.status_code == 200, (role, region, target, resp.text)
    # Agencies work at any level; the test route itself is for officials only (403 by role, not by claim).
    for region in ("330000", "331100", "330110"):
        resp = await client.get(URL.format("330110"), headers=auth("agency", region))
        assert resp.status_code == 403 and "角色" in resp.json()["detail"]


def test_jurisdiction_comes_from_the_tree() -> None:
    tree = region_tree()
    assert tree.covered("330100") >= {"330100", "330110", "330182"} and "330200" not in tree.covered("330100")
    assert tree.covered("331100") >= {"331199"}
    assert len(tree.covered("330000")) == len(tree.rows)
    assert not region_covers("33%%00", "330110") and not region_covers("__0000", "330110")
    assert not region_covers("330100", "330199")  # a code of the right form but not in the snapshot
    county = Principal(sub="c", role=Role.COUNTY, region="330110")
    assert county.region_codes() == frozenset({"330110"})
    assert Principal(sub="a", role=Role.ADMIN, region="330000").region_codes() is None


def test_a_claim_is_never_a_like_pattern() -> None:
    """The SQL helper builds ``IN (codes)`` from the tree: the claim's characters never reach a pattern."""
    from sqlalchemy import column, select
    from sqlalchemy.dialects import postgresql

    from shared.db import in_territory

    stmt = select(column("uscc")).where(in_territory(column("region_code"), Principal(
        sub="c", role=Role.CITY, region="330100")))
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    assert "LIKE" not in sql.upper() and "'330110'" in sql and "'330200'" not in sql
    admin = select(column("uscc")).where(in_territory(column("region_code"), Principal(
        sub="a", role=Role.ADMIN, region="330000")))
    assert "region_code" not in str(admin.compile(dialect=postgresql.dialect()))



def test_verified_tokens_are_cached_until_they_expire() -> None:
    from shared.auth import AuthError, decode_token, issue_token
    from tests.harness import settings

    cfg = settings("registry")
    token = issue_token(cfg, role="county_official", region="330110", ttl=2)
    first = decode_token(cfg, token)
    assert decode_token(cfg, token) is first  # served from the cache, not verified again
    other = settings("registry", jwt_secret="another-secret-long-enough-for-hs256-0123456789")
    with pytest.raises(AuthError):
        decode_token(other, token)  # the cache is per key configuration: no cross-secret hits
    time.sleep(2.1)
    with pytest.raises(AuthError):
        decode_token(cfg, token)  # expired: dropped from the cache and refused
