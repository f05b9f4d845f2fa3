"""HTTP routes for coordination cases (thin: parse, call the service, shape the answer)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from sqlalchemy.orm import Session

from concord.access.model import TLP, Principal
from concord.audit import service as audit
from concord.cases import service
from concord.cases.model import Case, CaseStatus, Resolution, Severity
from concord.errors import FaultLocation, InvalidInput, NotFound, PreconditionFailed
from concord.web.deps import (
    Limit,
    RequestBody,
    choices,
    decode_cursor,
    get_db,
    next_cursor,
    read_by,
    user,
    writer,
)

router = APIRouter(tags=["cases"])


class CaseSummaryOut(BaseModel):
    id: int
    title: str
    status: str
    severity: str
    tlp: str
    origin_org: str | None
    assignee: str | None
    participants: list[str]
    created_at: datetime
    updated_at: datetime


class TechniqueOut(BaseModel):
    technique_id: str
    name: str


class LinkedEventOut(BaseModel):
    id: int
    time: datetime
    rsit_class: str
    rsit_type: str
    primary_value: str
    country: str | None
    tlp: str


class LinkedIndicatorOut(BaseModel):
    kind: str
    value: str


class TimelineOut(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    text: str
    detail: dict[str, Any]


class CaseOut(CaseSummaryOut):
    summary: str
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution: str | None = Field(
        description="how a resolved or closed case ended",
        json_schema_extra={"enum": [*choices(Resolution)["enum"], None]},
    )
    version: int = Field(
        description="grows with every change of the case's fields, status, comments and "
        "participants; the ETag, for If-Match"
    )
    named_users: list[str]
    techniques: list[TechniqueOut]
    events: list[LinkedEventOut]
    indicators: list[LinkedIndicatorOut]
    timeline: list[TimelineOut]


class CasePage(BaseModel):
    items: list[CaseSummaryOut]
    next_cursor: str | None


def _choice_of(enum_type: Any, field_name: str) -> Any:
    """A field taking one of `enum_type`'s values, any case, checked as the service does."""
    return read_by(lambda value: service.choice(enum_type, value, field_name), keep=True)


class CaseCreate(RequestBody):
    title: str = Field(min_length=1, max_length=300)
    summary: str = Field(default="", max_length=20_000)
    severity: Annotated[str, _choice_of(Severity, "severity")] = Field(
        default="medium", json_schema_extra=choices(Severity)
    )
    tlp: str | None = Field(
        default=None,
        description="default: the narrowest label of the events, at least AMBER",
        json_schema_extra=choices(TLP),
    )
    event_ids: list[int] = Field(default_factory=list, max_length=1000, examples=[[12, 15]])
    indicators: list[str] = Field(
        default_factory=list, max_length=1000, examples=[["192.0.2.1", "c2.invalid"]]
    )
    participants: list[str] = Field(
        default_factory=list, description="national body slugs", examples=[["example-cert"]]
    )
    techniques: list[str] = Field(
        default_factory=list, description="ATT&CK ids", examples=[["T1566.001"]]
    )


class CasePatch(RequestBody):
    status: Annotated[str | None, _choice_of(CaseStatus, "status")] = Field(
        default=None, json_schema_extra=choices(CaseStatus)
    )
    severity: Annotated[str | None, _choice_of(Severity, "severity")] = Field(
        default=None, json_schema_extra=choices(Severity)
    )
    assignee: str | None = Field(default=None, description="a username; null or '' unassigns")
    title: str | None = Field(default=None, max_length=300)
    summary: str | None = Field(default=None, max_length=20_000)
    tlp: str | None = Field(default=None, json_schema_extra=choices(TLP))
    resolution: str | None = Field(
        default=None,
        description="with status resolved or closed, or on a resolved case: how it ended",
        json_schema_extra=choices(Resolution),
    )

    @field_validator("status", "severity", "title", "summary", "tlp", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # null clears an assignee or a resolution; these have no empty state to clear to, and
        # a null read as "leave it" would answer 200 having done nothing
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null: leave it out to keep it as it is")
        return value


class CommentIn(RequestBody):
    text: str = Field(min_length=1, max_length=20_000)


class ParticipantIn(RequestBody):
    org: str | None = Field(default=None, description="a national body to take part")
    user: str | None = Field(default=None, description="a user to name (TLP:RED)")


class TechniqueIn(RequestBody):
    technique_id: str = Field(min_length=1, max_length=20)
    name: str = Field(
        default="", max_length=200, description="optional: ATT&CK's name of the technique"
    )


class LinkIn(RequestBody):
    event_ids: list[int] = Field(default_factory=list, max_length=1000)
    indicators: list[str] = Field(default_factory=list, max_length=1000)


def timeline_out(item: service.TimelineItem) -> TimelineOut:
    entry = item.entry
    return TimelineOut(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        kind=entry.kind,
        text=entry.text,
        detail=item.detail,
    )


def summary_out(
    case: Case, orgs: dict[int, str], names: dict[int, str], participants: list[str]
) -> CaseSummaryOut:
    return CaseSummaryOut(
        id=case.id,
        title=case.title,
        status=case.status,
        severity=case.severity,
        tlp=case.tlp,
        origin_org=orgs.get(case.origin_org_id) if case.origin_org_id else None,
        assignee=names.get(case.assignee_user_id) if case.assignee_user_id else None,
        participants=participants,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


def case_out(d: service.CaseDetail) -> CaseOut:
    c = d.case
    return CaseOut(
        id=c.id,
        title=c.title,
        status=c.status,
        severity=c.severity,
        tlp=c.tlp,
        origin_org=d.origin_org.slug if d.origin_org else None,
        assignee=d.assignee,
        participants=[o.slug for o in d.participants],
        created_at=c.created_at,
        updated_at=c.updated_at,
        summary=c.summary,
        resolved_at=c.resolved_at,
        closed_at=c.closed_at,
        resolution=c.resolution,
        version=c.version,
        named_users=d.named_users,
        techniques=[TechniqueOut(technique_id=t.technique_id, name=t.name) for t in d.techniques],
        events=[
            LinkedEventOut(
                id=e.id,
                time=e.time,
                rsit_class=e.rsit_class,
                rsit_type=e.rsit_type,
                primary_value=e.primary_value,
                country=e.country,
                tlp=e.tlp,
            )
            for e in d.events
        ],
        indicators=[LinkedIndicatorOut(kind=i.kind, value=i.value) for i in d.indicators],
        timeline=[timeline_out(t) for t in d.timeline],
    )


def _etag(version: int) -> str:
    return f'"v{version}"'


_VERSION_TAG = re.compile(r'"v(0|[1-9][0-9]*)"')  # as _etag writes it, ASCII digits only


def _versions_asked(if_match: str | None) -> frozenset[int] | None:
    """The versions an `If-Match` lists (None: no condition, or `*`, any version). RFC 9110
    compares strongly: a weak tag matches no version."""
    if if_match is None or if_match.strip() == "*":
        return None
    versions: set[int] = set()
    for part in if_match.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            continue  # matches nothing (see WEAK_TAG)
        if not (len(tag) >= 2 and tag.startswith('"') and tag.endswith('"')):
            raise InvalidInput(
                f'If-Match {if_match!r} is not a list of ETags of a case (like "v7")',
                FaultLocation(pointer="/header/If-Match"),
            )
        # compared as the opaque text it is: "7" or "v07" is not the ETag "v7", and matches
        # no version
        if _VERSION_TAG.fullmatch(tag):
            versions.add(int(tag[2:-1]))
    return frozenset(versions)


WEAK_TAG = (
    "If-Match compares strongly, and a weak ETag (W/...) never matches: send the case's "
    'ETag as read, such as "v7"'
)


def _weak_tags(if_match: str | None) -> bool:
    return if_match is not None and any(
        part.strip().startswith("W/") for part in if_match.split(",")
    )


def _after_write(
    session: Session, p: Principal, case_id: int, response: Response
) -> CaseOut | Response:
    session.commit()
    try:
        out = case_out(service.case_detail(session, p, case_id))
    except NotFound:
        # The change (a narrower TLP, say) took the case out of the writer's own view.
        return Response(status_code=204)
    response.headers["ETag"] = _etag(out.version)
    return out


@router.get("/cases", response_model=CasePage)
def list_cases(
    status: str | None = None,
    severity: str | None = None,
    country: str | None = None,
    assignee: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> CasePage:
    filters = service.CaseFilters(status, severity, country, assignee, q)
    cases = service.list_cases(session, p, filters, after_id=decode_cursor(cursor), limit=limit)
    audit.record_reads(session, p, Case.object_kind, cases)
    orgs = service.org_slugs(session, [c.origin_org_id for c in cases])
    names = service.usernames(session, [c.assignee_user_id for c in cases])
    participants = service.participant_slugs(session, [c.id for c in cases])
    return CasePage(
        items=[summary_out(c, orgs, names, participants[c.id]) for c in cases],
        next_cursor=next_cursor(cases, limit),
    )


@router.post("/cases", response_model=CaseOut, status_code=201)
def create_case(
    body: CaseCreate,
    response: Response,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> CaseOut | Response:
    """Open a case from scratch, or from events (by id) and indicators (by value) you can
    see. National bodies take part in the cases they open."""
    case = service.create_case(session, p, service.CaseInput(**body.model_dump()))
    response.headers["Location"] = f"/api/v1/cases/{case.id}"
    return _after_write(session, p, case.id, response)


@router.get("/cases/{case_id}", response_model=CaseOut)
def get_case(
    case_id: int,
    response: Response,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> CaseOut:
    """The case with its ETag: send it back as `If-Match` to change only what you read."""
    detail = service.case_detail(session, p, case_id)
    audit.record_reads(session, p, Case.object_kind, [detail.case])
    response.headers["ETag"] = _etag(detail.case.version)
    return case_out(detail)


@router.patch(
    "/cases/{case_id}",
    response_model=CaseOut,
    responses={
        412: {
            "description": "The case changed since the version If-Match names",
            "content": {"application/problem+json": {}},
        }
    },
)
def update_case(
    case_id: int,
    body: CasePatch,
    response: Response,
    if_match: str | None = Header(
        None, description="the ETag of the case as read: refused with 412 if it changed since"
    ),
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> CaseOut | Response:
    """Change status (new → triage → in-progress → resolved → closed; resolved or closed →
    in-progress reopens; a resolution says how a resolved or closed case ended), severity,
    assignee, title, summary or TLP."""
    try:
        service.update_case(
            session,
            p,
            case_id,
            body.model_dump(exclude_unset=True),
            versions=_versions_asked(if_match),
        )
    except PreconditionFailed:
        if _weak_tags(if_match):  # "changed since you read it" would be false
            raise PreconditionFailed(WEAK_TAG) from None
        raise
    return _after_write(session, p, case_id, response)


@router.post("/cases/{case_id}/comments", response_model=TimelineOut, status_code=201)
def add_comment(
    case_id: int,
    body: CommentIn,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> TimelineOut:
    entry = service.add_comment(session, p, case_id, body.text)
    session.commit()
    # A comment's detail is its length only: nothing linked to filter.
    return timeline_out(service.TimelineItem(entry, json.loads(entry.detail or "{}")))


@router.post("/cases/{case_id}/participants", response_model=CaseOut)
def add_participant(
    case_id: int,
    body: ParticipantIn,
    response: Response,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> CaseOut | Response:
    """Add a national body (it receives a share, so it sees an AMBER case) or name a user
    of the centre or of a participating organisation (the only way into a TLP:RED case)."""
    if bool(body.org) == bool(body.user):
        raise InvalidInput("give either org or user", FaultLocation(pointer="/body"))
    if body.org:
        service.add_participant(session, p, case_id, body.org)
    else:
        service.add_named_user(session, p, case_id, body.user or "")
    return _after_write(session, p, case_id, response)


@router.delete("/cases/{case_id}/participants", status_code=204)
def remove_participant(
    case_id: int,
    org: str | None = None,
    user_name: str | None = Query(None, alias="user"),
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> None:
    """Withdraw a participating organisation (and its users' names) or one named user."""
    if bool(org) == bool(user_name):
        raise InvalidInput("give either org or user", FaultLocation(field="org"))
    if org:
        service.remove_participant(session, p, case_id, org)
    else:
        service.remove_named_user(session, p, case_id, user_name or "")
    session.commit()


@router.post("/cases/{case_id}/techniques", response_model=CaseOut)
def add_technique(
    case_id: int,
    body: TechniqueIn,
    response: Response,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> CaseOut | Response:
    service.add_technique(session, p, case_id, body.technique_id, body.name)
    return _after_write(session, p, case_id, response)


@router.delete("/cases/{case_id}/techniques/{technique_id}", status_code=204)
def remove_technique(
    case_id: int,
    technique_id: str,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> None:
    """Take an ATT&CK technique off the case."""
    service.remove_technique(session, p, case_id, technique_id)
    session.commit()


@router.delete("/cases/{case_id}/events", status_code=204)
def unlink_events(
    case_id: int,
    event_id: Annotated[list[int], Query()] = [],  # noqa: B006 (FastAPI reads the default)
    indicator: Annotated[list[str], Query()] = [],  # noqa: B006
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> None:
    """Unlink events (`?event_id=12&event_id=15`) and indicators (`?indicator=VALUE`) that
    you can see from the case."""
    try:
        service.unlink(session, p, case_id, event_id, indicator)
    except InvalidInput as exc:
        # the service names the fields of a link body; here they are query parameters
        named = {"event_ids": "/query/event_id", "indicators": "/query/indicator"}
        exc.locations = [
            FaultLocation(pointer=named[loc.field]) if loc.field in named else loc
            for loc in exc.locations
        ]
        raise
    session.commit()


@router.post("/cases/{case_id}/events", response_model=CaseOut)
def link_events(
    case_id: int,
    body: LinkIn,
    response: Response,
    p: Principal = Depends(writer),
    session: Session = Depends(get_db),
) -> CaseOut | Response:
    """Link events (by id) and indicators (by value) that you can see to the case."""
    service.link(session, p, case_id, body.event_ids, body.indicators)
    return _after_write(session, p, case_id, response)
