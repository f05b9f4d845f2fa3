"""Request-scoped dependencies: the database session and the principal."""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access import service as access
from concord.access.model import ANONYMOUS, Principal, TokenScope
from concord.db import as_utc, session_scope
from concord.errors import FaultLocation, Forbidden, InvalidInput, Unauthorized

SESSION_COOKIE = "concord_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]


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


def get_db() -> Iterator[Session]:
    with session_scope() as session:
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
_QUERY_NAMES = "concord_query_names"


def known_query(request: Request) -> None:
    """Refuse a query parameter the route does not take, naming it: a misspelt one (`TLP`
    for `tlp`, `fromat`) would otherwise be ignored in silence, and the request served as
    if it had not been given, a report kept at a looser TLP than meant."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    names = getattr(route, _QUERY_NAMES, None)
    if names is None:
        found: set[str] = set()
        pending = [dependant]
        while pending:  # the route's own parameters and its dependencies'
            current = pending.pop()
            found.update(field.alias for field in current.query_params)
            pending.extend(current.dependencies)
        names = frozenset(found)
        setattr(route, _QUERY_NAMES, names)
    for name in request.query_params:
        if name not in names:
            takes = ", ".join(sorted(names)) or "none"
            raise InvalidInput(
                f"unknown query parameter {name!r}; this route takes: {takes}",
                FaultLocation(pointer=f"/query/{name}"),
            )
