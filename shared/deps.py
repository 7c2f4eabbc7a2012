"""FastAPI dependencies shared by every service: ``SessionDep``, ``PrincipalDep``, role guards."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import AuthError, Principal, Role, decode_token
from shared.problems import Problem, database_problem
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="JWT: sub, role, region (GB/T 2260), uscc (企业用户)")


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


async def get_principal(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("缺少访问令牌 (missing bearer token)")
    return decode_token(runtime.settings, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[..., Any]:
    """Dependency: the caller's role must be one of ``roles`` (admin always passes), else 403."""
    allowed = {Role.ADMIN, *roles}

    async def guard(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            names = "、".join(sorted(r.value for r in allowed))
            raise Problem(403, f"当前角色无权执行此操作 (role {principal.role.value} not allowed; needs {names})")
        return principal

    return guard

