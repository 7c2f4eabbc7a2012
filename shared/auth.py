"""Identity (JWT bearer) and jurisdiction.

Roles: province_official, city_official, county_official, commissioner, enterprise, agency, admin.
Jurisdiction comes from the token, never from the request, and is computed from the GB/T 2260 region tree
(``shared.regions``), never from string patterns: ``330000`` covers the province, a city ``330100`` its counties
and programme zones, a county only itself, an enterprise only its USCC. The ``region`` claim must be a known,
active code of the level the role works at (:data:`ROLE_LEVELS`), else the token is refused.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.regions import region_tree
from shared.settings import Settings


class Role(StrEnum):
    PROVINCE = "province_official"
    CITY = "city_official"
    COUNTY = "county_official"
    COMMISSIONER = "commissioner"
    ENTERPRISE = "enterprise"
    AGENCY = "agency"
    ADMIN = "admin"


OFFICIALS = frozenset({Role.PROVINCE, Role.CITY, Role.COUNTY})


# The region levels each role's ``region`` claim may name (programme zones are county-level).
ROLE_LEVELS: dict[Role, frozenset[str]] = {
    Role.PROVINCE: frozenset({"province"}),
    Role.CITY: frozenset({"city"}),
    Role.COUNTY: frozenset({"county"}),
    # 服务专员: the city assigns them for 隐形冠军/小巨人/单项冠军, the county for 专精特新/创新型.
    Role.COMMISSIONER: frozenset({"city", "county"}),
    Role.ENTERPRISE: frozenset({"county"}),
    Role.AGENCY: frozenset({"province", "city", "county"}),
    Role.ADMIN: frozenset({"province", "city", "county"}),
}
USCC_PATTERN = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")


class AuthError(Exception):
    """401 (default): the token is missing, expired, forged or malformed; 403: its claims are well-formed but
    not allowed together (a role at a region level it does not work at)."""

    def __init__(self, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    sub: str
    role: Role
    region: str
    uscc: str | None = None

    @property
    def is_official(self) -> bool:
        return self.role in OFFICIALS

    @property
    def level(self) -> str:
        return region_level(self.region)

    def region_codes(self) -> frozenset[str] | None:
        """Every region code within this principal's territory (from the region tree), or None for no limit
        (admins). Use it as ``column.in_(codes)`` (``shared.db.in_territory``), never as a LIKE pattern."""
        if self.role == Role.ADMIN:
            return None
        return region_tree().covered(self.region)

    def covers_region(self, region_code: str | None) -> bool:
        """Whether ``region_code`` lies within this principal's territory (admins: everywhere)."""
        if self.role == Role.ADMIN:
            return True
        if not region_code:
            return False
        return region_covers(self.region, region_code)

    def can_see_enterprise(self, uscc: str, region_code: str | None) -> bool:
        """Enterprise users see only themselves; everyone else by territory (commissioners: see services)."""
        if self.role == Role.ENTERPRISE:
            return self.uscc == uscc
        return self.covers_region(region_code)


def region_level(code: str) -> str:
    """``province``, ``city`` or ``county`` of a GB/T 2260 code: from the region tree; a code outside the
    snapshot by its form (xx0000 province, xxxx00 city)."""
    level = region_tree().level(code)
    if level is not None:
        return level
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def region_covers(territory: str, code: str) -> bool:
    """Whether ``code`` is ``territory`` or lies below it in the region tree (unknown codes: never)."""
    return region_tree().covers(territory, code)


def _ancestor(code: str, level: str) -> str | None:
    tree = region_tree()
    row = tree.get(code)
    while row is not None and row.level != level:
        row = tree.get(row.parent_code) if row.parent_code else None
    return row.code if row else None


def city_of(code: str) -> str:
    """The city a county (or zone) belongs to, from the tree (the code's form outside the snapshot)."""
    return _ancestor(code, "city") or code[:4] + "00"


def province_of(code: str) -> str:
    return _ancestor(code, "province") or code[:2] + "0000"


def check_claims(principal: Principal) -> None:
    """Refuse a principal whose ``region`` is not a known active 6-digit code (401), or not of a level its role
    works at, or an enterprise without a well-formed ``uscc`` (403). Messages in Chinese."""
    region = principal.region
    tree = region_tree()
    if not (len(region) == 6 and region.isascii() and region.isdigit()) or not tree.is_active(region):
        raise AuthError(f"令牌的 region 不是有效的行政区划代码 (region claim {region!r} is not a known GB/T 2260 code)")
    level = tree.level(region) or ""
    if level not in ROLE_LEVELS[principal.role]:
        allowed = "、".join(sorted(ROLE_LEVELS[principal.role]))
        raise AuthError(
            f"角色 {principal.role.value} 的 region 须为 {allowed} 级代码, 而 {region} 是 {level} 级 "
            f"(region level does not match the role)",
            status=403,
        )
    if principal.role == Role.ENTERPRISE:
        if not principal.uscc or not USCC_PATTERN.match(principal.uscc):
            raise AuthError("企业用户令牌缺少有效的 uscc (enterprise token without a valid uscc)")
    elif principal.uscc is not None and not USCC_PATTERN.match(principal.uscc):
        raise AuthError("令牌的 uscc 格式不正确 (malformed uscc claim)")


def issue_token(
    settings: Settings,
    *,
    role: str,
    region: str,
    sub: str | None = None,
    uscc: str | None = None,
    ttl: int = 3600,
    private_key: str | None = None,
) -> str:
    """Sign a token the running services accept (HS256 with the configured secret, or RS256 with a key)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub or f"{role}:{region}",
        "role": Role(role).value,
        "region": region,
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
    }
    if uscc:
        claims["uscc"] = uscc
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_algorithm == "RS256":
        if not private_key:
            raise ValueError("RS256 signing needs a private key")
        return jwt.encode(claims, private_key, algorithm="RS256")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


def _jwks_key(url: str, token: str) -> Any:
    """The JWKS key named by the token's ``kid``; a token without ``kid`` is accepted only when the JWKS holds
    exactly one signing key (tokens minted by ``zjtx token --private-key`` carry no ``kid``)."""
    client = _jwks_client(url)
    if jwt.get_unverified_header(token).get("kid"):
        return client.get_signing_key_from_jwt(token).key
    keys = client.get_signing_keys()
    if len(keys) != 1:
        raise AuthError("令牌缺少 kid 且 JWKS 含多个密钥 (token without kid, several keys in JWKS)")
    return keys[0].key


# Verified tokens: token string → (principal, expiry). A token is verified and its principal built once; the
# cache answers repeats until the token's ``exp`` (bounded size, least recently used evicted first).
_TOKEN_CACHE: OrderedDict[tuple[str | None, ...], tuple[Principal, float]] = OrderedDict()
TOKEN_CACHE_SIZE = 4096


def decode_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid token (cached until the token expires), else :class:`AuthError`."""
    key = (settings.jwt_algorithm, settings.jwt_secret, settings.jwks_url, settings.jwt_audience, token)
    hit = _TOKEN_CACHE.get(key)
    if hit is not None:
        if hit[1] > time.time():
            _TOKEN_CACHE.move_to_end(key)
            return hit[0]
        del _TOKEN_CACHE[key]
    principal, expires = _verify(settings, token)
    _TOKEN_CACHE[key] = (principal, expires)
    if len(_TOKEN_CACHE) > TOKEN_CACHE_SIZE:
        _TOKEN_CACHE.popitem(last=False)
    return principal


def _verify(settings: Settings, token: str) -> tuple[Principal, float]:
    try:
        if settings.jwt_algorithm == "RS256":
            if not settings.jwks_url:
                raise AuthError("未配置 JWKS")
            key: Any = _jwks_key(settings.jwks_url, token)
        else:
            key = settings.jwt_secret
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            options={"require": ["exp", "sub"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("令牌已过期 (token expired)") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"令牌无效 (invalid token): {exc}") from exc
    try:
        principal = Principal.model_validate(
            {k: claims.get(k) for k in ("sub", "role", "region", "uscc") if claims.get(k) is not None}
        )
    except ValidationError as exc:
        raise AuthError("令牌声明不完整或角色未知 (missing or unknown claims)") from exc
    check_claims(principal)
    return principal, float(claims["exp"])
