"""HTTP routes for cross-state indicators, campaigns and correlation alerts (thin).

Everything shown is computed from the events the caller may see (see correlation.py).
Included under /api/v1 by the application.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.audit import service as audit
from concord.errors import FaultLocation, Faults, InvalidInput
from concord.events import correlation
from concord.events.api import LIMIT, LimitText, read_query
from concord.web.deps import decode_cursor, encode_cursor, get_db, user

router = APIRouter(tags=["indicators"])


class SightingOut(BaseModel):
    country: str | None
    org: str | None  # null when the reporting organisation is not visible to the caller
    events: int
    count: int
    first_seen: datetime
    last_seen: datetime


class IndicatorOut(BaseModel):
    id: int
    kind: str
    value: str
    cross_state: bool  # true only if the caller sees reports of two or more states
    warning_list: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    states: list[str]
    sightings: list[SightingOut]


class IndicatorPage(BaseModel):
    items: list[IndicatorOut]
    next_cursor: str | None


class CampaignOut(BaseModel):
    id: int
    label: str
    size: int
    indicators: int
    states: list[str]
    first_seen: datetime
    last_seen: datetime


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    next_cursor: str | None


class CampaignEventOut(BaseModel):
    id: int
    time: datetime
    last_seen: datetime
    country: str | None
    rsit_class: str
    rsit_type: str
    primary_value: str
    tlp: str


class GraphNode(BaseModel):
    id: str  # "event:<id>", "indicator:<id>" or "report:<n>"
    kind: str  # event | indicator | report (a MISP event joining events of one state)
    label: str


class GraphEdge(BaseModel):
    source: str
    target: str


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class CampaignDetail(CampaignOut):
    events: list[CampaignEventOut]
    truncated: bool  # more visible events than drawn
    graph: Graph


class AlertIndicator(BaseModel):
    id: int
    kind: str
    value: str


class AlertOut(BaseModel):
    id: int
    created_at: datetime
    country: str
    indicator: AlertIndicator
    states: list[str]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str = Field(
        description="the cursor to poll with for the alerts to come: after the last alert of "
        "the page, or the one given when the page is empty"
    )


def _indicator(v: correlation.IndicatorView) -> dict[str, Any]:
    return {
        "id": v.id,
        "kind": v.kind,
        "value": v.value,
        "cross_state": v.cross_state,
        "warning_list": v.warning_list,
        "first_seen": v.first_seen,
        "last_seen": v.last_seen,
        "states": v.states,
        "sightings": [s.__dict__ for s in v.sightings],
    }


def _campaign(v: correlation.CampaignView) -> dict[str, Any]:
    return {
        "id": v.id,
        "label": v.label,
        "size": v.size,
        "indicators": v.indicators,
        "states": v.states,
        "first_seen": v.first_seen,
        "last_seen": v.last_seen,
    }


@router.get("/indicators", response_model=IndicatorPage)
def list_indicators(
    request: Request,
    value: str | None = Query(None, description="an exact value: IP, domain, URL, hash ..."),
    kind: str | None = Query(None, description="ipv4, ipv6, domain, url, email, sha256 ..."),
    cursor: str | None = None,
    limit: LimitText = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> Any:
    """With `value`: that indicator and its sightings per state and organisation, as far as
    the caller may see them. Without: the indicators the caller sees reported by two or more
    states, by id, a page at a time."""
    faults = Faults()  # every fault of the query told at once, each at its parameter
    if value is None:
        if kind:
            faults.check(lambda: correlation.indicator_kind(kind), "")
        after = faults.check(lambda: decode_cursor(cursor), 0)
        size = read_query(faults, "limit", LIMIT, limit, 100)
        faults.raise_any()
        items = correlation.cross_state_indicators(session, p, after, size, kind)
        more = encode_cursor(items[-1].id) if len(items) == size else None
        return {"items": [_indicator(v) for v in items], "next_cursor": more}
    faults.check(lambda: correlation.check_asked_value(value, kind), None)
    if kind and "value" in faults.fields:  # a blank value is told before its kind is read
        faults.check(lambda: correlation.indicator_kind(kind), "")
    # every indicator of the value comes in one answer: there is no page to choose
    if "cursor" in request.query_params:
        faults.check(partial(_no_paging, "cursor"), None)
    # (a limit that cannot be read is told as such)
    if "limit" in request.query_params and read_query(faults, "limit", LIMIT, limit, None):
        faults.check(partial(_no_paging, "limit"), None)
    faults.raise_any()
    items = correlation.find_indicators(session, p, value, kind)
    return {"items": [_indicator(v) for v in items], "next_cursor": None}


def _no_paging(name: str) -> None:
    raise InvalidInput(
        f"{name!r} pages the list of cross-state indicators; with value, every indicator of "
        "that value is answered at once, so leave it out",
        FaultLocation(pointer=f"/query/{name}"),
    )


@router.get("/campaigns", response_model=CampaignPage)
def list_campaigns(
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> Any:
    items, last = correlation.campaign_page(session, p, decode_cursor(cursor), limit)
    more = encode_cursor(last) if last is not None else None
    return {"items": [_campaign(v) for v in items], "next_cursor": more}


@router.get("/campaigns/{campaign_id}", response_model=CampaignDetail)
def get_campaign(
    campaign_id: int, p: Principal = Depends(user), session: Session = Depends(get_db)
) -> Any:
    """A campaign with its visible events and the graph linking them through shared
    cross-state indicators, and through the report (a MISP event, a STIX report) in which
    one organisation reported several of them. A merged campaign's id answers with the
    campaign it joined."""
    v = correlation.visible_campaign(session, p, campaign_id)
    audit.record_reads(session, p, "event", v.events)
    nodes = [
        {"id": f"event:{e.id}", "kind": "event", "label": f"{e.country or '??'} {e.rsit_type}"}
        for e in v.events
    ]
    nodes += [
        {"id": f"indicator:{i}", "kind": "indicator", "label": value}
        for i, (_kind, value) in sorted(v.indicator_values.items())
    ]
    nodes += [
        {"id": f"report:{-n}", "kind": "report", "label": f"{kind} {ident}"}
        for n, (kind, ident) in sorted(v.reports.items(), reverse=True)
    ]
    edges = [
        {"source": f"event:{e}", "target": f"indicator:{i}" if i > 0 else f"report:{-i}"}
        for e, i in v.edges
    ]
    events = [
        {
            "id": e.id,
            "time": e.time,
            "last_seen": e.last_seen,
            "country": e.country,
            "rsit_class": e.rsit_class,
            "rsit_type": e.rsit_type,
            "primary_value": e.primary_value,
            "tlp": e.tlp,
        }
        for e in v.events
    ]
    return {
        **_campaign(v),
        "events": events,
        "truncated": v.truncated,
        "graph": {"nodes": nodes, "edges": edges},
    }


@router.get("/correlation-alerts", response_model=AlertPage)
def list_alerts(
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> Any:
    """Indicators that became cross-state with the caller's state involved (the centre: any
    state), while the caller's visible events show reports of two or more states, oldest
    first. A feed: `next_cursor` follows the last alert of the page, or is the cursor given
    when there is none (before the first alert when none was given), so a client polls with
    it for the alerts to come and never starts over."""
    after = decode_cursor(cursor)
    items = correlation.list_alerts(session, p, after, limit)
    more = encode_cursor(items[-1].id if items else after)
    return {
        "items": [
            {
                "id": a.id,
                "created_at": a.created_at,
                "country": a.country,
                "indicator": {"id": a.indicator_id, "kind": a.kind, "value": a.value},
                "states": a.states,
            }
            for a in items
        ],
        "next_cursor": more,
    }
