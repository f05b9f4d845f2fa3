"""RFC 9457 problem details for the API; readable HTML pages for the UI. Never a traceback."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path

from concord.errors import ConcordError
from concord.intake.readers.values import pointer_escape
from concord.web.deps import json_body_fault, takes_json_body

log = logging.getLogger("concord.web")
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    instance: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def is_api(request: Request) -> bool:
    # /metrics is read by a scraper, which is answered as a client, not sent to a login page
    return request.url.path.startswith("/api/") or request.url.path == "/metrics"


def _html(request: Request, status: int, title: str, detail: str) -> Response:
    if status == 401:
        from concord.web.ui import return_to

        # A form sent without a session (it ended, or was closed in another tab): the login
        # page says what became of it, or the click seems to have lost the text in silence.
        ended = "&ended=1" if request.method == "POST" else ""
        return RedirectResponse(f"/login?next={quote(return_to(request))}{ended}", status_code=303)
    from concord.web.ui import render_error

    return render_error(request, status, title, detail)


def _pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    return "/" + "/".join(pointer_escape(str(part)) for part in loc)


# pydantic's words before the message of a validator's ValueError: not the client's business
_VALUE_ERROR = "Value error, "


_INPUTS = ("query", "body", "path")


def _named(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with the `field` its pointer is in, when the pointer is into one of the
    request's named inputs (`/body/participants/1` is in `participants`): a client reading
    `field` finds every fault, however it was found."""
    pointer = entry.get("pointer")
    if "field" in entry or not isinstance(pointer, str):
        return entry
    parts = pointer.split("/")
    if len(parts) < 3 or parts[0] or parts[1] not in _INPUTS or not parts[2]:
        return entry
    field = parts[2].replace("~1", "/").replace("~0", "~")
    return {"pointer": pointer, "field": field, **entry}


def _fault(error: dict[str, Any]) -> dict[str, str]:
    """One validation fault as an entry of `errors`."""
    if error.get("type") == "json_invalid":
        # the location is a character offset into the body, which would read like a field
        loc = error.get("loc", ())
        position = loc[-1] if loc and isinstance(loc[-1], int) else 0
        reason = (error.get("ctx") or {}).get("error", "not JSON")
        return {
            "pointer": "/body",
            "detail": f"malformed JSON at character {position}: {reason}",
        }
    message = str(error.get("msg", "invalid")).removeprefix(_VALUE_ERROR)
    return _named({"pointer": _pointer(error.get("loc", ())), "detail": message})


def _allowed_methods(request: Request) -> str:
    """Every method the path takes: the router names those of its first route alone, and a
    path's GET and POST are two routes."""
    from concord.web.app import route_table

    table = getattr(request.app.state, "method_table", None)
    if table is None:  # compiled once per app, on its first 405
        table = [(method, compile_path(path)[0]) for method, path in route_table(request.app)]
        request.app.state.method_table = table
    path = request.url.path
    return ", ".join(sorted({method for method, regex in table if regex.match(path)}))


def _unreadable_body(request: Request, cause: BaseException | None) -> tuple[int, str]:
    """The status and words for a body that could not be parsed, by what went wrong."""
    if isinstance(cause, RecursionError):
        return 400, "the body cannot be read: it is nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        declared = json_body_fault(request.headers.get("content-type", ""))
        if declared:  # a charset other than UTF-8 was declared
            return 415, declared
        return 400, "the body is not UTF-8, which JSON must be"
    return 400, "the body cannot be read: malformed, or nested too deeply"


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
# A page whose address names what cannot exist (an id that is no number, or too large).
NO_SUCH_PAGE = "there is no such page: check the address"


def _oversized_parameter(request: Request) -> str | None:
    """The pointer to the first path or query parameter holding a number too large for
    an integer column, if any."""
    for place, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            text = str(value).strip().lstrip("+-")
            if text.isdigit() and int(text) > _INT32:
                return f"/{place}/{name}"
    return None


async def _body_keys(request: Request) -> frozenset[str]:
    """The top-level keys of the request's JSON body; none when it has no JSON object."""
    if not takes_json_body(request):  # an upload or a form: not read again here
        return frozenset()
    try:
        document = json.loads(await request.body())  # the route's copy, read already
    except (ValueError, RecursionError, RuntimeError, ClientDisconnect):
        return frozenset()
    return frozenset(document) if isinstance(document, dict) else frozenset()


async def _located(request: Request, exc: ConcordError) -> list[dict[str, object]]:
    """The entries of `errors`: each fault at each of its places. A place named by a field
    alone is given a pointer too, to the input of the request that holds that name (a query
    parameter it sent, else a key of its JSON body, else a path parameter), so that one
    answer locates every fault alike. A name no input holds, or a field in a file (a column
    of an upload), is left as it is: a pointer is not guessed."""
    body: frozenset[str] | None = None

    async def pointer(name: str) -> str | None:
        nonlocal body
        if name in request.query_params:
            return f"/query/{pointer_escape(name)}"
        if body is None:
            body = await _body_keys(request)
        if name in body:
            return f"/body/{pointer_escape(name)}"
        if name in request.path_params:
            return f"/path/{pointer_escape(name)}"
        return None

    errors: list[dict[str, object]] = []
    for fault in (exc, *exc.more):
        for loc in fault.locations:
            where = loc.as_dict()
            if where.keys() == {"field"}:
                found = await pointer(str(loc.field))
                if found is not None:
                    where = {"pointer": found, **where}
            errors.append(_named({**where, "detail": fault.message}))
    return errors


def install(app: FastAPI) -> None:
    @app.exception_handler(ConcordError)
    async def concord_error(request: Request, exc: ConcordError) -> Response:
        if not is_api(request):
            # the message alone: the page translates it, a field's name would stay English
            return _html(request, exc.status, exc.title, exc.message)
        errors = await _located(request, exc)
        # RFC 9110: a 401 names the scheme that authenticates
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(
            exc.status,
            exc.title,
            exc.message,
            request.url.path,
            headers,
            **({"errors": errors} if errors else {}),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [_fault(e) for e in exc.errors()]
        first = errors[0] if errors else {"pointer": "/", "detail": "invalid request"}
        detail = f"{first['pointer']}: {first['detail']}"
        if not is_api(request):
            if exc.errors() and all(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
                return _html(request, 404, "Not found", NO_SUCH_PAGE)  # /events/abc
            return _html(request, 422, "Invalid input", _readable(exc.errors()) or detail)
        return problem(422, "Invalid input", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else ""
        extra: dict[str, Any] = {}
        if detail == "There was an error parsing the body":  # FastAPI's words, e.g. on deep JSON
            status, detail = _unreadable_body(request, exc.__cause__)
            extra["errors"] = [{"pointer": "/body", "detail": detail}]
        title = {
            404: "Not found",
            405: "Method not allowed",
            413: "Payload too large",
            415: "Unsupported media type",
            400: "Bad request",
        }.get(status, "Error")
        detail = detail or title
        # what the exception says of itself (the methods a 405 allows, `Allow`) is kept
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        if not is_api(request):
            page = _html(request, status, title, detail)
            page.headers.update(headers)
            return page
        return problem(status, title, detail, request.url.path, headers, **extra)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, exc: Exception) -> Response:
        # A number too large for its column (an id of 20 digits), or a value the database
        # refuses to store: the request's fault, not the server's.
        log.warning("value refused by the database on %s: %s", request.url.path, exc)
        where = _oversized_parameter(request)
        detail = "a value of the request is out of the range the database holds"
        # the driver's own words: the statement's text may hold NULL
        if re.search(r"\bNUL\b", str(getattr(exc, "orig", None) or exc)):
            detail = "a text of the request holds a NUL character, which cannot be stored"
        if not is_api(request):
            if where and where.startswith("/path/"):  # an id no row can have
                return _html(request, 404, "Not found", NO_SUCH_PAGE)
            # the message alone: the page translates it, a pointer would stay English
            return _html(request, 422, "Invalid input", detail)
        errors = [{"pointer": where, "detail": detail}] if where else []
        if where:
            detail = f"{where}: {detail}"
        return problem(422, "Invalid input", detail, request.url.path, errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.url.path)
        detail = f"an internal error occurred; quote reference {incident} to the operators"
        if not is_api(request):
            return _html(request, 500, "Internal error", detail)
        return problem(500, "Internal error", detail, request.url.path)
