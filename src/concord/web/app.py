"""The application factory: API under /api/v1, UI at /, static files from the package."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from concord import __version__
from concord.access.model import Principal, Role, TokenScope
from concord.web import problems
from concord.web.deps import get_db, known_query, principal
from concord.web.uploads import BodyLimit, RawApiBodies

STATIC = Path(__file__).parent / "static"

PROBLEM_RESPONSES = {
    code: {"description": desc, "content": {"application/problem+json": {}}}
    for code, desc in {
        400: "Malformed request",
        401: "Not signed in",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        413: "Payload too large",
        422: "Invalid input",
        500: "Internal error",
    }.items()
}


class HeadAsGet:
    """HEAD answers as GET would, without the body: uptime checks, load balancers and
    `curl -I` send HEAD, and FastAPI's routes answer it 405 by themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


SERVER_STOPPING = (
    "the server is stopping: the request was not carried out; send it again once the server is back"
)


class AnswerWhenStopping:
    """A request the server's stop cancels (a second Ctrl-C on `concord serve`) is answered
    503, saying to send it again, rather than 500 with a traceback in the log: an upload
    still being received, a page still being read. A request that writes in steps answers
    for itself (the intake: what it wrote is kept, and the file sent again goes on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if started or task is None:
                raise  # half an answer cannot be taken back
            task.uncancel()  # that it may still answer
            request, title = Request(scope, receive), "Service unavailable"
            if problems.is_api(request):
                answer = problems.problem(503, title, SERVER_STOPPING, request.url.path)
            else:
                from concord.web.ui import render_error

                answer = render_error(request, 503, title, SERVER_STOPPING)
            await answer(scope, receive, send)


class Health(BaseModel):
    status: str
    version: str
    database: str


health_router = APIRouter(tags=["health"])


@health_router.get(
    "/health",
    response_model=Health,
    responses={503: {"description": "The database has not this release's schema"}},
)
def health(session: Session = Depends(get_db)) -> Any:
    """Status "ok" when the database answers at this release's schema; otherwise 503, for a
    readiness check (a load balancer's), with the reason in `status`."""
    from concord.migrate import schema_fault

    try:
        current = session.execute(text("select version_num from alembic_version")).scalar()
    except DBAPIError:  # no such table: no schema
        current = None
    fault = schema_fault(current)
    body = Health(
        status=f"the database {fault}" if fault else "ok",
        version=__version__,
        database=session.get_bind().dialect.name,
    )
    return JSONResponse(body.model_dump(), status_code=503) if fault else body


def metrics(p: Principal = Depends(principal)) -> Response:
    """Prometheus text format: intake throughput and lag, batch timings. The counters span
    every organisation's intake, AMBER+STRICT and RED included, whose volume and timing TLP
    keeps from the centre's analysts: they are for the centre's operators, its admins with
    the admin scope (as for the audit log). The scraper sends such a token (Prometheus
    `authorization: credentials`)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if p.anonymous:
        return Response(
            "send an admin-scoped token of a centre admin: Authorization: Bearer TOKEN\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not (p.is_centre and p.role == Role.ADMIN and p.can(TokenScope.ADMIN)):
        return Response(
            "metrics are for the centre's operators: an admin-scoped token of a centre admin\n",
            403,
            media_type="text/plain",
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app() -> FastAPI:
    from concord.access import views as access_views
    from concord.access.api import router as access_router
    from concord.audit import views as audit_views
    from concord.audit.api import router as audit_router
    from concord.cases import views as cases_views
    from concord.cases.api import router as cases_router
    from concord.events import correlation_views
    from concord.events import views as events_views
    from concord.events.api import router as events_router
    from concord.events.correlation_api import router as correlation_router
    from concord.intake import views as intake_views
    from concord.intake.api import router as intake_router
    from concord.orgs import views as orgs_views
    from concord.orgs.api import router as orgs_router
    from concord.reports import views as reports_views
    from concord.reports.api import router as reports_router
    from concord.web import ui

    app = FastAPI(
        title="Concord",
        version=__version__,
        summary="Coordination of computer incident response across national CERTs",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    _api_docs(app)
    problems.install(app)
    app.add_middleware(AnswerWhenStopping)
    app.add_middleware(BodyLimit)
    app.add_middleware(RawApiBodies)
    app.add_middleware(HeadAsGet)
    api = APIRouter(
        prefix="/api/v1", responses=PROBLEM_RESPONSES, dependencies=[Depends(known_query)]
    )
    for router in (
        health_router,
        orgs_router,
        access_router,
        audit_router,
        intake_router,
        events_router,
        correlation_router,
        cases_router,
        reports_router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.include_router(ui.router)
    app.include_router(orgs_views.router)
    app.include_router(access_views.router)
    app.include_router(audit_views.router)
    app.include_router(cases_views.router)
    app.include_router(reports_views.router)
    app.include_router(intake_views.router)
    app.include_router(events_views.router)
    app.include_router(correlation_views.router)
    app.add_api_route("/metrics", metrics, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _declare_bearer_tokens(app)
    return app


def _declare_bearer_tokens(app: FastAPI) -> None:
    """Say in the OpenAPI document how the API authenticates, so that a generated client
    sends its token (the routes read the header themselves)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {})["securitySchemes"] = {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`concord token create`, or the API tokens "
                    "page): `Authorization: Bearer cnc_...`.",
                }
            }
            schema["security"] = [{"token": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, with included routers flattened: the
    authorization matrix test walks this, so new routes are checked without a list."""
    from fastapi.routing import APIRoute

    found: list[tuple[str, str]] = []

    def walk(routes: list, prefix: str) -> None:  # type: ignore[type-arg]
        for route in routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                    found.append((method, prefix + route.path))
            elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "path") and hasattr(route, "methods") and route.methods:
                for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                    found.append((method, prefix + route.path))

    walk(app.routes, "")
    return found


def _api_docs(app: FastAPI) -> None:
    """/api/docs: Swagger UI from the package's own copy of its files, since the network of
    a CERT often reaches no CDN (FastAPI's default page loads them from one)."""
    import fastapi_offline

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/api/docs/assets", StaticFiles(directory=assets), name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title="Concord API",
            swagger_js_url="/api/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/assets/swagger-ui.css",
            swagger_favicon_url="/api/docs/assets/favicon.png",
        )
