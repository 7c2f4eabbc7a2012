"""RFC 9457 problem+json for every error, with the failing field and a Chinese message."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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

# Chinese renderings of pydantic's error types; the English message stays alongside.
_ERROR_ZH: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "长度不足",
    "string_too_long": "长度超限",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "须为整数",
    "int_from_float": "须为整数",
    "decimal_parsing": "须为数字",
    "decimal_max_places": "小数位数过多",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "date_from_datetime_parsing": "日期格式不正确",
    "date_parsing": "日期格式不正确",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "bool_parsing": "须为布尔值",
    "json_invalid": "JSON 格式错误",
    "model_attributes_type": "须为对象",
    "dict_type": "须为对象",
    "list_type": "须为数组",
    "value_error": "取值无效",
    "uuid_parsing": "UUID 格式不正确",
}


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
        return problem_response(
            401, exc.detail, instance=request.url.path, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            zh = _ERROR_ZH.get(str(err.get("type")), "取值无效")
            errors.append(
                {
                    "field": _field_path(err.get("loc", ())),
                    "message": f"{zh} ({err.get('msg')})",
                    "type": err.get("type"),
                }
            )
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
        log.exception("unhandled error")
        return problem_response(500, "服务器内部错误,请稍后重试 (internal error)", instance=request.url.path)
