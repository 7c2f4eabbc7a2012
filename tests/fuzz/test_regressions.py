"""The 5xx the fuzzer found, pinned as plain requests: each must be a 422 problem+json naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from shared.problems import PROBLEM_JSON
from tests.harness import auth, running_service

PROVINCE = auth("province_official", "330000")
BIG = 12347363273303169024  # beyond bigint
INT32 = 97938691400  # beyond integer

CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    # (service, method, url, request kwargs, field named in the problem)
    ("registry", "GET", f"/api/v1/targets?year={INT32}", {}, "year"),
    (
        "registry",
        "PUT",
        "/api/v1/targets",
        {
            "json": {
                "region_code": "330110",
                "track": "srdi",
                "measure": "pool",
                "level": "county",
                "year": 2026,
                "target": INT32,
            }
        },
        "target",
    ),
    ("registry", "GET", f"/api/v1/enterprises/91330100716105852F/indicators/{INT32}", {}, "year"),
    ("registry", "GET", "/api/v1/enterprises?q=a%00b", {}, "q"),
    ("finance", "GET", f"/api/v1/budgets?year={INT32}", {}, "year"),
    ("finance", "GET", f"/api/v1/entitlements?year={-INT32}", {}, "year"),
    ("finance", "GET", f"/api/v1/ledger?year={INT32}", {}, "year"),
    ("finance", "GET", "/api/v1/policies?jurisdiction=%F0%BC%98%A2%3A%00Q", {}, "jurisdiction"),
    ("finance", "GET", "/api/v1/policies/ab%00c", {}, "policy_id"),
    (
        "finance",
        "POST",
        "/api/v1/policies",
        {
            "json": {
                "name": "政策",
                "jurisdiction": "330000",
                "fund": "sme",
                "kind": "tier_reward",
                "effective_from": "2026-01-01",
                "tiers": {"srdi:province\u0000": "100000"},
            }
        },
        "tiers.srdi:province\u0000",
    ),
    ("notification", "POST", f"/api/v1/notifications/{BIG}/read", {}, "notice_id"),
    ("notification", "GET", f"/api/v1/notifications?cursor={BIG}", {}, "cursor"),
    ("evaluation", "GET", "/api/v1/applications?batch_year=-392139048553806", {}, "batch_year"),
]


@pytest.mark.parametrize(
    ("service", "method", "url", "kwargs", "field"), CASES, ids=[f"{c[0]} {c[1]} {c[2]}" for c in CASES]
)
async def test_found_by_fuzzing_is_a_422(
    service: str, method: str, url: str, kwargs: dict[str, Any], field: str
) -> None:
    async with running_service(service) as (_, client):
        response = await client.request(method, url, headers=PROVINCE, **kwargs)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
