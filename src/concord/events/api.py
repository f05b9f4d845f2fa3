"""HTTP routes for events (thin)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.audit import service as audit
from concord.errors import FaultLocation, Faults, InvalidInput
from concord.events import service
from concord.events.model import Event
from concord.web.deps import (
    Limit,
    RequestBody,
    decode_cursor,
    get_db,
    next_cursor,
    user,
    writer,
)

router = APIRouter(tags=["events"])


_T = TypeVar("_T")


def read_query(faults: Faults, name: str, typed: TypeAdapter[_T], given: Any, instead: _T) -> _T:
    """The query parameter `name`, taken as text, read as `typed` reads it, with FastAPI's
    words for a fault; `instead` when it is not given or cannot be read, its fault kept in
    `faults` at /query/`name`. Read by FastAPI itself, one parameter it cannot read would
    refuse the request alone, before the route could tell the faults of the others."""
    if given is None:
        return instead

    def read() -> _T:
        try:
            return typed.validate_python(given)
        except ValidationError as exc:
            # pydantic's words before a validator's own, dropped as the API's answers do
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise InvalidInput(message, FaultLocation(pointer=f"/query/{name}")) from None

    return faults.check(read, instead)


def text_read_as(typed: TypeAdapter[Any]) -> Any:
    """The type of a query parameter taken as text and read by `read_query` as `typed`:
    the API's description still says what it holds."""
    return Annotated[str, WithJsonSchema(typed.json_schema())]


# Read by search_time, not by pydantic's own parser, so the page and the API agree.
SINCE = TypeAdapter(Annotated[datetime, BeforeValidator(service.search_time)])
UNTIL = TypeAdapter(Annotated[datetime, BeforeValidator(partial(service.search_time, until=True))])
SUBMISSION = TypeAdapter(Annotated[int, Field(ge=1)])
LIMIT = TypeAdapter(Limit)
SinceText = text_read_as(SINCE)
UntilText = text_read_as(UNTIL)
SubmissionText = text_read_as(SUBMISSION)
LimitText = Annotated[text_read_as(LIMIT), Query(description="page size")]


class ObservableOut(BaseModel):
    kind: str
    value: str
    role: str


class EventOut(BaseModel):
    id: int
    time: datetime
    last_seen: datetime
    count: int
    rsit_class: str
    rsit_type: str
    nature: str
    feed: str
    port: int | None
    protocol: str | None
    application: str | None
    confidence: int | None
    description: str
    attack_techniques: list[str]
    observables: list[ObservableOut]
    country: str | None
    # null when the caller may not see that organisation
    reported_by: str | None
    owner: str | None
    tlp: str
    raw_location: str
    extra: dict[str, Any]


class EventDetail(EventOut):
    raw: str = Field(
        description="the source text of this record alone, bounded; empty when it cannot be "
        "isolated from the rest of its submission"
    )


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def _out(e: Event, obs: list[dict[str, str]], slugs: dict[int, str]) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": e.time,
        "last_seen": e.last_seen,
        "count": e.count,
        "rsit_class": e.rsit_class,
        "rsit_type": e.rsit_type,
        "nature": e.nature,
        "feed": e.feed,
        "port": e.port,
        "protocol": e.protocol,
        "application": e.application,
        "confidence": e.confidence,
        "description": e.description,
        "attack_techniques": [t for t in e.attack_techniques.split(",") if t],
        "observables": obs,
        "country": e.country,
        "reported_by": slugs.get(e.origin_org_id) if e.origin_org_id else None,
        "owner": slugs.get(e.owner_org_id) if e.owner_org_id else None,
        "tlp": e.tlp,
        "raw_location": e.raw_location,
        "extra": service.extra_fields(e),
    }


@router.get("/events", response_model=EventPage)
def list_events(
    value: str | None = Query(None, description="an observable: IP, domain, URL, hash ..."),
    since: SinceText | None = Query(
        None,
        description="events from this time on (ISO 8601; without a zone, UTC); "
        "a bare day YYYY-MM-DD counts from its start",
    ),
    until: UntilText | None = Query(
        None,
        description="events before this time (ISO 8601; without a zone, UTC); "
        "a bare day YYYY-MM-DD includes that whole day",
    ),
    rsit_class: str | None = Query(None, alias="class"),
    rsit_type: str | None = Query(None, alias="type"),
    country: str | None = Query(None, description="reporting state (ISO 3166-1 alpha-2)"),
    owner: str | None = Query(None, description="slug of the owner of the resource"),
    feed: str | None = None,
    submission: SubmissionText | None = Query(
        None, description="the id of an intake receipt: only the events it added"
    ),
    cursor: str | None = None,
    limit: LimitText = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> Any:
    faults = Faults()  # every fault of the query told at once, each at its parameter
    start = read_query(faults, "since", SINCE, since, None)
    end = read_query(faults, "until", UNTIL, until, None)
    submission_id = read_query(faults, "submission", SUBMISSION, submission, None)
    after_id = faults.check(lambda: decode_cursor(cursor), 0)
    size = read_query(faults, "limit", LIMIT, limit, 100)
    q = service.EventQuery(
        value,
        start,
        end,
        rsit_class,
        rsit_type,
        country,
        owner,
        feed,
        after_id,
        size,
        submission_id=submission_id,
    )
    events = service.search(session, p, q, faults)
    obs = service.observables(session, [e.id for e in events])
    slugs = service.org_slugs(
        session, p, {e.origin_org_id for e in events} | {e.owner_org_id for e in events}
    )
    audit.record_reads(session, p, "event", events)
    return {
        "items": [_out(e, obs.get(e.id, []), slugs) for e in events],
        "next_cursor": next_cursor(events, size),
    }


@router.get("/events/{event_id}", response_model=EventDetail)
def get_event(
    event_id: int, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> Any:
    e = service.get_event(session, p, event_id)
    obs = service.observables(session, [e.id])
    slugs = service.org_slugs(session, p, {e.origin_org_id, e.owner_org_id})
    audit.record_reads(session, p, "event", [e])
    return {**_out(e, obs.get(e.id, []), slugs), "raw": service.raw_record(session, e)}


class EventShareIn(RequestBody):
    org: str = Field(description="slug of the organisation that may read the event from now on")


@router.post("/events/{event_id}/shares", status_code=204)
def share_event(
    event_id: int,
    body: EventShareIn,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> None:
    """Share a TLP:AMBER or AMBER+STRICT event with an organisation: the owner of the
    resource it concerns, another state's national body. For the staff of the organisation
    that reported it (and, for AMBER, of the centre)."""
    service.share_event(session, p, event_id, body.org)
    session.commit()
