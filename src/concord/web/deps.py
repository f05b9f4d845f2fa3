"""Request-scoped dependencies: the database session and the principal."""

from __future__ import annotations

import base64
import email.message
import enum
import json
import types
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Query, Request, params
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access import service as access
from concord.access.model import ANONYMOUS, Principal, TokenScope
from concord.db import as_utc, read_scope, session_scope
from concord.errors import (
    ConcordError,
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    Unauthorized,
)
from concord.intake.readers.values import pointer_escape

SESSION_COOKIE = "concord_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]


_SEQUENCES = (list, tuple, set, frozenset)


def _takes_a_list(annotation: Any) -> bool:
    """Whether a query parameter of this type may be given more than once."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_takes_a_list(arg) for arg in get_args(annotation))
    return origin in _SEQUENCES or annotation in _SEQUENCES


_INT64 = 2**63 - 1  # the widest integer column


def _storable(value: Any) -> None:
    """Refuse what no column can hold, before it reaches one: NUL characters (PostgreSQL
    refuses them, SQLite would keep them and put them in pages), unpaired surrogates (JSON
    escapes can make them and no UTF-8 encoder takes them) and integers past 64 bits."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("the text holds a NUL character, which cannot be stored")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the text is not valid Unicode (an unpaired surrogate)") from None
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64:
        raise ValueError("the number is out of the range the database holds")
    elif isinstance(value, list | tuple | set):
        for item in value:
            _storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)


def read_by(read: Callable[[str], Any], *, keep: bool = False) -> AfterValidator:
    """A service's reading of a text field (`read`, which raises InvalidInput) as a check of
    the request body, so that its fault is told with the body's others, in the service's
    words, rather than after them. The field becomes what `read` gives, or stays the text
    given (`keep`: the service reads it again itself). A field left out (None) is left."""

    def check(value: Any) -> Any:
        if value is None:
            return None
        try:
            found = read(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value if keep else found

    return AfterValidator(check)


def choices(values: type[enum.StrEnum]) -> dict[str, Any]:
    """For the OpenAPI document: the values a text field takes (the service still reads the
    spellings it is lenient about, such as TLP:RED, and names a wrong one)."""
    return {"enum": [v.value for v in values]}


class RequestBody(BaseModel):
    """A JSON request body. A field it does not know is refused (422 naming it), not ignored:
    a PATCH with a misspelt or unchangeable field must not answer 200 having done nothing.
    Every value is checked to be storable, so the fault is named here, not by the database."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _check_storable(cls, value: Any) -> Any:
        _storable(value)
        return value


def get_db(request: Request) -> Iterator[Session]:
    """The request's unit of work. A GET only reads: on SQLite it then holds no write lock, so
    a slow page never makes an intake wait."""
    scope = read_scope() if request.method in SAFE_METHODS else session_scope()
    with scope as session:
        yield session


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def resolve_principal(request: Request, session: Session) -> Principal:
    """Bearer token first, then the session cookie; anonymous when neither is valid."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    address = client_address(request)
    principal = ANONYMOUS
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        resolved = access.resolve_token(session, header[7:], address)
        if resolved is None:
            raise Unauthorized("the API token is invalid, expired or revoked")
        principal = resolved
        request.state.auth = "token"
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = access.resolve_session(session, cookie, address)
            if found is not None:
                principal, web = found
                request.state.auth = "session"
                request.state.csrf_token = web.csrf_token
    request.state.principal = principal
    return principal


def principal(request: Request, session: Session = Depends(get_db)) -> Principal:
    p = resolve_principal(request, session)
    if getattr(request.state, "auth", None) == "session" and request.method not in SAFE_METHODS:
        # Cookie-authenticated API writes need the CSRF token as a header (htmx sends it).
        sent = request.headers.get("x-csrf-token")
        if request.url.path.startswith("/api/") and sent != request.state.csrf_token:
            raise Forbidden("missing or wrong CSRF token")
    return p


def user(p: Principal = Depends(principal)) -> Principal:
    if p.anonymous:
        raise Unauthorized()
    return p


def writer(p: Principal = Depends(user)) -> Principal:
    if not p.can(TokenScope.WRITE):
        raise Forbidden(policy.missing_scope(p, TokenScope.WRITE))
    return p


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


# A time given to the API: one without a zone is taken as UTC; one UTC cannot hold is a 422.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        if not text.startswith("id:"):
            raise ValueError
        value = int(text[3:])
        if not 0 <= value < 2**63:  # no id lies outside a 64-bit key
            raise ValueError
        return value
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor", FaultLocation(field="cursor")) from None


def next_cursor(items: list, limit: int, key=lambda item: item.id) -> str | None:  # type: ignore[no-untyped-def]
    return encode_cursor(key(items[-1])) if len(items) == limit and items else None


# kept on the route itself: an id may be reused by the next app's route, an object not
_ROUTE_INPUTS = "concord_route_inputs"
# Media types a JSON body is read from (RFC 8259 JSON, and the +json types built on it).
_JSON_TYPES = ("application/json",)
_BOOLEANS = ("true", "false")


@dataclass(frozen=True)
class _RouteInputs:
    """What a route reads from a request, found once per route."""

    names: frozenset[str]  # its query parameters and its dependencies'
    repeatable: frozenset[str]  # those that take a list (`?event_id=12&event_id=15`)
    booleans: frozenset[str]
    json_body: bool  # a JSON body, not a form or a raw upload


def _route_inputs(route: Any) -> _RouteInputs | None:
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    found = getattr(route, _ROUTE_INPUTS, None)
    if found is not None:
        return found
    names: set[str] = set()
    repeatable: set[str] = set()
    booleans: set[str] = set()
    pending = [dependant]
    while pending:  # the route's own parameters and its dependencies'
        current = pending.pop()
        for field in current.query_params:
            names.add(field.alias)
            annotation = field.field_info.annotation
            if _takes_a_list(annotation):
                repeatable.add(field.alias)
            if annotation in (bool, bool | None):
                booleans.add(field.alias)
        pending.extend(current.dependencies)
    body = getattr(route, "body_field", None)
    found = _RouteInputs(
        frozenset(names),
        frozenset(repeatable),
        frozenset(booleans),
        body is not None and not isinstance(body.field_info, params.Form),
    )
    setattr(route, _ROUTE_INPUTS, found)
    return found


async def known_query(request: Request) -> None:
    """Read what an API request gives strictly, before its route does.

    A query parameter the route does not take is refused, naming it: a misspelt one (`TLP`
    for `tlp`, `fromat`) would otherwise be ignored in silence, and the request served as
    if it had not been given, a report kept at a looser TLP than meant. So is one given
    twice (the last would win), one given empty (is it absent, or meant as nothing?) and a
    boolean other than true or false ("yes" would be read as a guess). Every parameter at
    fault is told in one answer, each at its place. A JSON body must be sent as JSON in
    UTF-8, and must not give a key twice (the last would win)."""
    inputs = _route_inputs(request.scope.get("route"))
    if inputs is None:
        return
    _check_query(request, inputs)
    if inputs.json_body:
        body = await request.body()  # read once already, by the route: this is its copy
        if body:
            _check_json_body(request, body)


def takes_json_body(request: Request) -> bool:
    """Whether the request's route reads a JSON body (which it has then read, and kept)."""
    inputs = _route_inputs(request.scope.get("route"))
    return inputs is not None and inputs.json_body


def _check_query(request: Request, inputs: _RouteInputs) -> None:
    """Every parameter at fault told at once, in the order the query string gives them."""
    faults = Faults()
    for name in request.query_params:
        faults.check(partial(_check_parameter, request, inputs, name), None)
    faults.raise_any()


def _check_parameter(request: Request, inputs: _RouteInputs, name: str) -> None:
    """The fault of one query parameter, if it has one: the first found, once (an unknown
    parameter's value is not looked at: it is refused whatever it holds)."""
    where = FaultLocation(pointer=f"/query/{name}")
    if name not in inputs.names:
        takes = ", ".join(sorted(inputs.names)) or "none"
        raise InvalidInput(f"unknown query parameter {name!r}; this route takes: {takes}", where)
    values = request.query_params.getlist(name)
    if len(values) > 1 and name not in inputs.repeatable:
        raise InvalidInput(f"the query parameter {name!r} is given more than once", where)
    for value in values:
        if not value:
            raise InvalidInput(
                f"the query parameter {name!r} is empty: give a value or leave it out", where
            )
        if name in inputs.booleans and value.lower() not in _BOOLEANS:
            raise InvalidInput(
                f"the query parameter {name!r} is true or false, not {value!r}", where
            )


def json_body_fault(content_type: str) -> str | None:
    """Why a body sent with this Content-Type is not read as JSON, if it is not."""
    message = email.message.Message()
    message["content-type"] = content_type
    media = message.get_content_type() if content_type else ""
    if media not in _JSON_TYPES and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        return "the body must be JSON, sent with Content-Type: application/json"
    charset = message.get_param("charset")
    if isinstance(charset, str) and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return f"JSON must be UTF-8, not {charset!r}: send the body in UTF-8"
    return None


class _DuplicateKeys(dict):  # type: ignore[type-arg]
    """A JSON object that was given a key more than once."""

    repeated: str


def _repeated_key(body: bytes) -> tuple[str, str] | None:
    """The first key given twice in an object of the JSON `body`, with its JSON pointer."""
    marked: list[_DuplicateKeys] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _value in items]
        if len(set(keys)) == len(keys):
            return dict(items)
        duplicate = _DuplicateKeys(items)
        duplicate.repeated = next(key for i, key in enumerate(keys) if key in keys[:i])
        marked.append(duplicate)
        return duplicate

    try:
        document = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None  # the route has read it already; what it could not read, it has said
    if not marked:
        return None
    pending: deque[tuple[str, Any]] = deque([("", document)])
    while pending:  # breadth first, without recursion: the document may be deeply nested
        path, node = pending.popleft()
        if isinstance(node, _DuplicateKeys):
            return f"{path}/{pointer_escape(node.repeated)}", node.repeated
        if isinstance(node, dict):
            pending.extend((f"{path}/{pointer_escape(k)}", v) for k, v in node.items())
        elif isinstance(node, list):
            pending.extend((f"{path}/{i}", v) for i, v in enumerate(node))
    return None


def _check_json_body(request: Request, body: bytes) -> None:
    fault = json_body_fault(request.headers.get("content-type", ""))
    if fault:
        raise ConcordError(fault, 415, "Unsupported media type", [FaultLocation(pointer="/body")])
    repeated = _repeated_key(body)
    if repeated is not None:
        pointer, key = repeated
        raise InvalidInput(
            f"the key {key!r} is given more than once in the JSON body",
            FaultLocation(pointer=f"/body{pointer}"),
        )
