"""RFC 9457 problem details for the API; readable HTML pages for the UI. Never a traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from concord.errors import ConcordError

log = logging.getLogger("concord.web")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _is_api(request: Request) -> bool:
    # /metrics is read by a scraper, which is answered as a client, not sent to a login page
    return request.url.path.startswith("/api/") or request.url.path == "/metrics"


def _html(request: Request, status: int, title: str, detail: str) -> Response:
    if status == 401:
        from concord.web.ui import return_to

        return RedirectResponse(f"/login?next={quote(return_to(request))}", status_code=303)
    from concord.web.ui import render_error

    return render_error(request, status, title, detail)


def _pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    return "/" + "/".join(str(part) for part in loc)


def _readable(errors: Any) -> str:
    """A validation fault as a person reads it: the field by its name, and what was given."""
    if not errors:
        return ""
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    field = str(loc[-1]) if loc else "request"
    given = first.get("input")
    if isinstance(given, str | int | float):  # a catalogued sentence, so the page translates it
        return f"the value of {field} is not valid: {given!r}"
    return f"the value of {field} is not valid"


_INT32 = 2**31 - 1  # the narrowest integer column


def _oversized_parameter(request: Request) -> str | None:
    """The pointer to the first path or query parameter holding a number too large for
    an integer column, if any."""
    for place, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            text = str(value).strip().lstrip("+-")
            if text.isdigit() and int(text) > _INT32:
                return f"/{place}/{name}"
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(ConcordError)
    async def concord_error(request: Request, exc: ConcordError) -> Response:
        if not _is_api(request):
            # the message alone: the page translates it, a field's name would stay English
            return _html(request, exc.status, exc.title, exc.message)
        errors = [{**loc.as_dict(), "detail": exc.message} for loc in exc.locations]
        return problem(
            exc.status,
            exc.title,
            exc.message,
            request.url.path,
            **({"errors": errors} if errors else {}),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"pointer": _pointer(e.get("loc", ())), "detail": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"pointer": "/", "detail": "invalid request"}
        detail = f"{first['pointer']}: {first['detail']}"
        if not _is_api(request):
            return _html(request, 422, "Invalid input", _readable(exc.errors()) or detail)
        return problem(422, "Invalid input", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = {
            404: "Not found",
            405: "Method not allowed",
            413: "Payload too large",
            400: "Bad request",
        }.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if detail == "There was an error parsing the body":  # FastAPI's words, e.g. on deep JSON
            detail = "the body cannot be read: malformed, or nested too deeply"
        if not _is_api(request):
            return _html(request, exc.status_code, title, detail)
        return problem(exc.status_code, title, detail, request.url.path)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, exc: Exception) -> Response:
        # A number too large for its column (an id of 20 digits), or a value the database
        # refuses to store: the request's fault, not the server's.
        log.warning("value refused by the database on %s: %s", request.url.path, exc)
        where = _oversized_parameter(request)
        detail = "a value of the request is out of the range the database holds"
        if "NUL" in str(exc):
            detail = "a text of the request holds a NUL character, which cannot be stored"
        errors = [{"pointer": where, "detail": detail}] if where else []
        if where:
            detail = f"{where}: {detail}"
        if not _is_api(request):
            return _html(request, 422, "Invalid input", detail)
        return problem(422, "Invalid input", detail, request.url.path, errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.url.path)
        detail = f"an internal error occurred; quote reference {incident} to the operators"
        if not _is_api(request):
            return _html(request, 500, "Internal error", detail)
        return problem(500, "Internal error", detail, request.url.path)
