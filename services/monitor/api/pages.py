"""The monitor's pages (server-rendered, Jinja2; charts by the ECharts copy shipped in ``static/``, no CDN).

Sign-in: a form takes the same JWT the API takes and keeps it in an HttpOnly cookie."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.monitor.api.deps import COOKIE, RuntimeDep, SessionDep, page_principal
from services.monitor.api.reports import XLSX
from services.monitor.app import enterprises, reporting
from services.monitor.app.annual_report import annual_report
from services.monitor.domain.funnel import STAGE_NAMES, STAGES
from services.monitor.domain.labels import EVENT_NAMES
from shared.auth import AuthError, Principal, decode_token
from shared.tiers import LEVEL_NAMES, TIER_NAMES

HERE = FsPath(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(STAGE_NAMES=STAGE_NAMES, STAGES=STAGES, LEVEL_NAMES=LEVEL_NAMES, EVENT_NAMES=EVENT_NAMES,
                             TIER_NAMES=TIER_NAMES)

router = APIRouter(prefix="/monitor", include_in_schema=False)


def mount_static(app: FastAPI) -> None:
    app.mount("/monitor/static", StaticFiles(directory=str(HERE / "static")), name="monitor-static")


def _signed_in(request: Request, runtime: RuntimeDep) -> Principal | None:
    try:
        return page_principal(request, runtime)
    except AuthError:
        return None


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/monitor/login?next={request.url.path}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/monitor", error: str | None = None) -> Response:
    return templates.TemplateResponse(request, "login.html", {"next": next, "error": error})


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep, token: Annotated[str, Form(max_length=8000)],
                next: Annotated[str, Form(max_length=300)] = "/monitor") -> Response:
    try:
        principal = decode_token(runtime.settings, token.strip())
    except AuthError as exc:
        return templates.TemplateResponse(request, "login.html", {"next": next, "error": exc.detail},
                                          status_code=401)
    target = next if next.startswith("/monitor") and not next.startswith("/monitor/login") else "/monitor"
    if target == "/monitor":
        target = f"/monitor/regions/{principal.region}"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=runtime.settings.env == "prod", max_age=12 * 3600)
    return response


@router.get("/logout")
async def logout() -> Response:
    response = RedirectResponse("/monitor/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("", response_class=HTMLResponse)
async def home(request: Request, runtime: RuntimeDep) -> Response:
    principal = _signed_in(request, runtime)
    if principal is None:
        return _login_redirect(request)
    return RedirectResponse(f"/monitor/regions/{principal.region}", status_code=303)


def _not_found(request: Request, what: str) -> Response:
    return templates.TemplateResponse(request, "notfound.html", {"what": what}, status_code=404)


@router.get("/regions/{code}", response_class=HTMLResponse)
async def region_page(request: Request, runtime: RuntimeDep, session: SessionDep,
                      code: Annotated[str, Path(pattern=r"^\d{6}$")],
                      year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> Response:
    principal = _signed_in(request, runtime)
    if principal is None:
        return _login_redirect(request)
    if not principal.covers_region(code) or code not in reporting.region_tree().nodes:
        return _not_found(request, "区划")
    y = year or await reporting.default_year(session, principal.region)
    years = sorted({*await reporting.target_years(session, principal.region), datetime.now(UTC).year, y - 2, y - 1, y})
    data = await reporting.region_page(session, code, y)
    return templates.TemplateResponse(request, "region.html", {
        "principal": principal, "year": y, "years": years, "year_asked": year is not None, "code": code, "data": data,
        "region": data["attainment"]["region"], "breadcrumbs": data["attainment"]["breadcrumbs"],
        "children": data["attainment"]["children"],
    })


@router.get("/reports/annual")
async def annual_report_download(request: Request, runtime: RuntimeDep, session: SessionDep,
                                 region: Annotated[str, Query(pattern=r"^\d{6}$")],
                                 year: Annotated[int, Query(ge=2000, le=2100)]) -> Response:
    """The annual report for a signed-in page user (the API's ``/api/v1/monitor/reports/annual`` wants a bearer)."""
    principal = _signed_in(request, runtime)
    if principal is None:
        return _login_redirect(request)
    if not principal.covers_region(region) or region not in reporting.region_tree().nodes:
        return _not_found(request, "区划")
    filename, content = await annual_report(session, region, year)
    return Response(content, media_type=XLSX,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
async def enterprise_page(request: Request, runtime: RuntimeDep, session: SessionDep,
                          uscc: Annotated[str, Path(pattern=r"^[0-9A-Z]{18}$")]) -> Response:
    principal = _signed_in(request, runtime)
    if principal is None:
        return _login_redirect(request)
    view = await enterprises.enterprise_view(session, uscc)
    if view is None or not principal.covers_region(view["region_code"]):
        return _not_found(request, "企业")
    region = reporting.ref(view["region_code"]) if view["region_code"] else None
    return templates.TemplateResponse(request, "enterprise.html", {"principal": principal, "e": view,
                                                                   "region": region})
