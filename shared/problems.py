"""RFC 9457 problem+json for every error, with the failing field and a Chinese message."""

from __future__ import annotations

import logging
import socket
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.auth import AuthError
from shared.context import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

TITLES: dict[int, str] = {
    400: "请求无效 (Bad Request)",
    401: "未认证 (Unauthorized)",
    403: "无权操作 (Forbidden)",
    404: "资源不存在 (Not Found)",
    405: "方法不允许 (Method Not Allowed)",
    409: "状态冲突 (Conflict)",
    412: "版本已变更 (Precondition Failed)",
    413: "请求过大 (Payload Too Large)",
    415: "不支持的媒体类型 (Unsupported Media Type)",
    422: "数据校验失败 (Unprocessable Content)",
    428: "缺少前置条件 (Precondition Required)",
    429: "请求过多 (Too Many Requests)",
    500: "服务器内部错误 (Internal Server Error)",
    503: "服务暂不可用 (Service Unavailable)",
}

# Chinese renderings of pydantic's error types, filled from the error's context (``{max_length}``, …).
_ERROR_ZH: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "须为字符串",
    "string_too_short": "长度不能少于 {min_length}",
    "string_too_long": "长度不能超过 {max_length}",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多允许 {max_length} 项",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "须为整数",
    "int_parsing": "须为整数",
    "int_from_float": "须为整数",
    "float_type": "须为数字",
    "float_parsing": "须为数字",
    "decimal_type": "须为数字",
    "decimal_parsing": "须为数字",
    "decimal_max_places": "小数位数不能超过 {decimal_places}",
    "decimal_max_digits": "数字位数不能超过 {max_digits}",
    "decimal_whole_digits": "整数部分位数过多",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "greater_than": "须大于 {gt}",
    "less_than": "须小于 {lt}",
    "finite_number": "须为有限数值",
    "date_type": "日期格式不正确 (YYYY-MM-DD)",
    "date_from_datetime_parsing": "日期格式不正确 (YYYY-MM-DD)",
    "date_from_datetime_inexact": "日期格式不正确 (YYYY-MM-DD)",
    "date_parsing": "日期格式不正确 (YYYY-MM-DD)",
    "datetime_type": "日期时间格式不正确 (ISO 8601)",
    "datetime_parsing": "日期时间格式不正确 (ISO 8601)",
    "datetime_from_date_parsing": "日期时间格式不正确 (ISO 8601)",
    "enum": "取值不在允许范围内 ({expected})",
    "literal_error": "取值不在允许范围内 ({expected})",
    "bool_type": "须为布尔值",
    "bool_parsing": "须为布尔值",
    "json_invalid": "请求体不是合法 JSON",
    "json_type": "须为 JSON",
    "model_type": "须为对象",
    "model_attributes_type": "须为对象",
    "dict_type": "须为对象",
    "list_type": "须为数组",
    "value_error": "取值无效",
    "assertion_error": "取值无效",
    "uuid_type": "UUID 格式不正确",
    "uuid_parsing": "UUID 格式不正确",
    "url_parsing": "网址格式不正确",
    "url_type": "网址格式不正确",
    "union_tag_invalid": "类型标签无效",
    "none_required": "须为空",
}
_CUSTOM_PREFIXES = ("Value error, ", "Assertion failed, ")
JSON_MEDIA_HINT = "请以 application/json 发送 (send the body as application/json)"


def _zh_message(err: dict[str, Any]) -> str:
    """A Chinese message for one pydantic error: the template of its type with its context; a validator's own
    message (``ValueError("…")``) as written, without pydantic's English prefix."""
    kind = str(err.get("type"))
    msg = str(err.get("msg", ""))
    if kind in ("value_error", "assertion_error"):
        for prefix in _CUSTOM_PREFIXES:
            if msg.startswith(prefix):
                return msg[len(prefix):]
        return msg or _ERROR_ZH[kind]
    template = _ERROR_ZH.get(kind)
    if template is None:
        return f"取值无效 ({msg})"
    ctx = err.get("ctx") or {}
    try:
        return template.format(**{k: v for k, v in ctx.items()})
    except (KeyError, IndexError, ValueError):
        return template.split(" {")[0].split("{")[0]


class Problem(Exception):
    """Raise from routes and domain adapters: becomes a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "错误")
        self.errors = errors
        self.type = type_
        self.headers = headers
        self.extensions = extensions


def field_error(field: str, message: str, status: int = 422, **extensions: Any) -> Problem:
    """A single-field validation problem: ``field`` is a dotted path, ``message`` Chinese (+ English)."""
    return Problem(status, f"{field}: {message}", errors=[{"field": field, "message": message}], **extensions)


def not_found(what: str = "资源") -> Problem:
    return Problem(404, f"{what}不存在或不在您的管辖范围内 (not found)")


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or TITLES.get(status, "错误"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    if rid := request_id_var.get():
        body["request_id"] = rid
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            errors=exc.errors,
            type_=exc.type,
            instance=request.url.path,
            headers=exc.headers,
            extensions=exc.extensions,
        )

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.detail, instance=request.url.path, headers=headers)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        mapped = database_problem(exc)
        if mapped is None:
            log.exception("unhandled error", exc_info=exc)
            return problem_response(500, "服务器内部错误,请稍后重试 (internal error)", instance=request.url.path)
        if mapped.status >= 500:
            log.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(
            mapped.status, mapped.detail, errors=mapped.errors, instance=request.url.path, headers=mapped.headers
        )

    for kind in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError, TimeoutError,
                 socket.gaierror):
        app.add_exception_handler(kind, _database)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        not_json = bool(content_type) and not content_type.endswith(("/json", "+json")) and not content_type.startswith(
            ("multipart/", "application/x-www-form-urlencoded")
        )
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            kind = str(err.get("type"))
            field = "body" if kind == "json_invalid" else _field_path(loc)
            message = _zh_message(err)
            if not_json and loc[:1] == ("body",) and len(loc) <= 1:
                message = f"{message}; {JSON_MEDIA_HINT}"
            errors.append({"field": field, "message": message, "type": kind})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, detail, errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "资源不存在 (not found)"
        elif exc.status_code == 405:
            detail = "不支持该方法 (method not allowed)"
        return problem_response(
            exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        if (mapped := database_problem(exc)) is not None:
            return problem_response(
                mapped.status, mapped.detail, errors=mapped.errors, instance=request.url.path, headers=mapped.headers
            )
        log.exception("unhandled error")
        return problem_response(500, "服务器内部错误,请稍后重试 (internal error)", instance=request.url.path)


DB_RETRY_AFTER = "5"
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,  # CannotConnectNow, TooManyConnections, ConnectionDoesNotExist, …
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,  # refused, reset, aborted
    socket.gaierror,  # the database host does not resolve
    TimeoutError,
    sqlalchemy.exc.TimeoutError,  # the pool had no connection to give
    sqlalchemy.exc.DisconnectionError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and orig not in chain else (
            current.__cause__ or current.__context__
        )
    return chain


def database_problem(exc: BaseException) -> Problem | None:
    """The problem a database failure answers, or None for other errors: numeric overflow and other invalid
    data → 422; the database unreachable, restarting or out of connections → 503 with ``Retry-After``."""
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, asyncpg.exceptions.NumericValueOutOfRangeError):
            column = getattr(cause, "column_name", None) or "body"
            return field_error(column, "数值超出允许范围 (numeric value out of range)")
        if isinstance(cause, asyncpg.DataError):
            column = getattr(cause, "column_name", None) or "body"
            return field_error(column, f"数据不符合要求 (invalid data: {cause.sqlstate})")
    for cause in chain:
        if isinstance(cause, _UNAVAILABLE) or (
            isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated
        ):
            return Problem(
                503, "数据库暂不可用, 请稍后重试 (database unavailable)", headers={"Retry-After": DB_RETRY_AFTER}
            )
    return None
