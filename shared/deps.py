"""FastAPI dependencies shared by every service: ``SessionDep``, ``PrincipalDep``, role guards."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from shared.auth import AuthError, Principal, Role, decode_token
from shared.db_reads import ReadPool
from shared.problems import Problem, database_problem
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


# Every dependency is ``async def``: a plain ``def`` one runs in the thread pool, a hop per request.
async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's session. It is closed after the response was sent (FastAPI exits request-scoped
    dependencies then, so a streamed response can still read). Routes commit in ``session.begin()`` blocks, so the
    close only rolls back what is left; when the server dropped the connection in between (a PostgreSQL restart)
    that rollback fails. Raised there, the error would come after the response had started: Starlette can no
    longer answer it ("response already started") and uvicorn closes the client's keep-alive connection. So a
    failed close is logged, the connection invalidated (the pool drops it) and the request's outcome stands."""
    session = runtime.session_factory()
    try:
        yield session
    finally:
        try:
            await session.close()
        except Exception as exc:
            if database_problem(exc) is None:
                raise
            log.warning("session close failed after the request, connection dropped: %s", type(exc).__name__)
            with contextlib.suppress(Exception):
                await session.invalidate()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


class _BearerPrincipal(HTTPBearer):
    """The caller's principal in ONE dependency: the bearer header read and its token verified (cached until it
    expires, ``shared.auth.decode_token``); still the ``HTTPBearer`` security scheme in the OpenAPI."""

    async def __call__(self, request: HTTPConnection) -> Principal:  # type: ignore[override]
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("缺少访问令牌 (missing bearer token)")
        runtime: ServiceRuntime = request.app.state.runtime
        return decode_token(runtime.settings, token)


get_principal = _BearerPrincipal(
    auto_error=False, scheme_name="HTTPBearer",
    description="JWT: sub, role, region (GB/T 2260), uscc (企业用户)",
)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def read_pool(request: Request) -> ReadPool:
    """The service's hot-read pool (``shared.db_reads``), for routes that read without a session."""
    pool: ReadPool | None = request.app.state.runtime.reads
    assert pool is not None, "ServiceRuntime.build gives every service one"
    return pool


def require_roles(*roles: Role) -> Callable[..., Any]:
    """Dependency: the caller's role must be one of ``roles`` (admin always passes), else 403."""
    allowed = {Role.ADMIN, *roles}

    async def guard(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            names = "、".join(sorted(r.value for r in allowed))
            raise Problem(403, f"当前角色无权执行此操作 (role {principal.role.value} not allowed; needs {names})")
        return principal

    return guard

