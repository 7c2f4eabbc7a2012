"""Identity (JWT bearer) and jurisdiction.

Roles: province_official, city_official, county_official, commissioner, enterprise, agency, admin.
Jurisdiction comes from the token, never from the request: ``330000`` covers every ``33xxxx``; a city
``3301xx`` → ``330100`` covers its counties and zones; a county only itself; an enterprise only its USCC.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

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


class AuthError(Exception):
    """401: the token is missing, expired, forged or malformed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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
    """``province`` (xx0000), ``city`` (xxxx00) or ``county`` for a 6-digit GB/T 2260 code."""
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def region_covers(territory: str, code: str) -> bool:
    if len(territory) != 6 or len(code) != 6:
        return False
    level = region_level(territory)
    if level == "province":
        return code[:2] == territory[:2]
    if level == "city":
        return code[:4] == territory[:4]
    return code == territory


def city_of(code: str) -> str:
    return code[:4] + "00"


def province_of(code: str) -> str:
    return code[:2] + "0000"


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


def decode_token(settings: Settings, token: str) -> Principal:
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
    if principal.role == Role.ENTERPRISE and not principal.uscc:
        raise AuthError("企业用户令牌缺少 uscc (enterprise token without uscc)")
    return principal
