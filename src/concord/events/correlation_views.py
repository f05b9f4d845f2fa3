"""UI pages for indicators (sightings across states) and campaigns (with their graph)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.audit import service as audit
from concord.errors import InvalidInput
from concord.events import correlation
from concord.web.deps import get_db
from concord.web.ui import page, ui_principal

router = APIRouter(include_in_schema=False)
GRAPH_SIZE = 640


def layout(
    events: list[int], indicators: list[int], cases: list[int] | None = None
) -> dict[str, tuple[float, float]]:
    """Rings: events outside, the indicators that link them inside, and between them the
    cases that link events of the campaign. Plain and stable: the same campaign always
    draws the same way, without a script."""
    centre = GRAPH_SIZE / 2
    spots: dict[str, tuple[float, float]] = {}
    # cases sit half a step off the events, so that they fall between the events' spokes
    between = math.pi / max(len(events), 1)
    rings = (
        (0.42, events, "event", 0.0),
        (0.18, indicators, "indicator", 0.0),
        (0.3, cases or [], "case", between),
    )
    for ring, ids, prefix, offset in rings:
        n = max(len(ids), 1)
        for k, ident in enumerate(ids):
            angle = 2 * math.pi * k / n - math.pi / 2 + offset
            spots[f"{prefix}:{ident}"] = (
                round(centre + ring * GRAPH_SIZE * math.cos(angle), 1),
                round(centre + ring * GRAPH_SIZE * math.sin(angle), 1),
            )
    return spots


def report_spots(
    spots: dict[str, tuple[float, float]], edges: list[tuple[int, int]]
) -> dict[str, tuple[float, float]]:
    """Each MISP event (a negative node in `edges`) halfway from the centre to the middle of
    the events it joins."""
    centre = GRAPH_SIZE / 2
    joined: dict[int, list[tuple[float, float]]] = {}
    for event_id, node in edges:
        spot = spots.get(f"event:{event_id}")
        if node < 0 and spot is not None:
            joined.setdefault(-node, []).append(spot)
    return {
        f"report:{n}": (
            round(centre + (sum(x for x, _ in at) / len(at) - centre) / 2, 1),
            round(centre + (sum(y for _, y in at) / len(at) - centre) / 2, 1),
        )
        for n, at in joined.items()
    }


@router.get("/indicators", response_class=HTMLResponse)
def indicators_page(
    request: Request,
    value: str = "",
    after: int = 0,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    campaigns: dict[int, list[correlation.CampaignView]] = {}
    cases: dict[int, list[Any]] = {}
    error: InvalidInput | None = None
    if value.strip():
        try:  # 10.0.0.0/33 is a slip to tell, as the API and the event search tell it
            correlation.check_asked_value(value, None)
        except InvalidInput as exc:
            error = exc
    if error is not None:
        found, listing = [], False
    elif value.strip():
        found = correlation.find_indicators(session, p, value.strip())
        listing = False
        campaigns = correlation.campaigns_of_indicators(session, p, [i.id for i in found])
        from concord.cases.service import cases_linking  # cases build on events

        linking = cases_linking(session, p, [], [i.id for i in found])
        audit.record_reads(session, p, "case", list(linking))
        for case, (_events, indicator_ids) in linking.items():
            for ind in indicator_ids:
                cases.setdefault(ind, []).append(case)
    else:
        found = correlation.cross_state_indicators(session, p, after, 100)
        listing = True
    alerts = correlation.latest_alerts(session, p, 20)
    from concord.cases.service import can_write as may_write_cases  # cases build on events

    return page(
        request,
        session,
        "indicators.html",
        status=422 if error else 200,
        error=error,
        may_open_case=may_write_cases(p, None),
        value=value,
        found=found,
        listing=listing,
        alerts=alerts,
        campaigns=campaigns,
        cases=cases,
        next_after=found[-1].id if listing and len(found) == 100 else None,
    )


ALERTS_PAGE = 50


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    before: int | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """Every cross-state correlation alert of the reader's state (all states for the
    centre), newest first, a page at a time."""
    alerts = correlation.list_alerts(session, p, 0, ALERTS_PAGE, newest_first=True, before=before)
    return page(
        request,
        session,
        "alerts.html",
        alerts=alerts,
        receives_alerts=correlation.receives_alerts(p),
        next_before=alerts[-1].id if len(alerts) == ALERTS_PAGE else None,
    )


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request,
    after: int = 0,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    items, next_after = correlation.campaign_page(session, p, after, 50)
    return page(request, session, "campaigns.html", items=items, next_after=next_after)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    campaign_id: int,
    request: Request,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    v = correlation.visible_campaign(session, p, campaign_id)
    audit.record_reads(session, p, "event", v.events)
    from concord.cases.service import cases_linking  # cases build on events

    cases = cases_linking(session, p, [e.id for e in v.events], sorted(v.indicator_values))
    audit.record_reads(session, p, "case", list(cases))
    spots = layout(
        # each state's events side by side, so that its MISP events sit by its arc
        [e.id for e in sorted(v.events, key=lambda e: (e.country or "", e.time, e.id))],
        sorted(v.indicator_values),
        [c.id for c in cases],
    )
    spots.update(report_spots(spots, v.edges))
    # what each case is drawn to: the campaign's events and indicators it links
    case_nodes = {
        case.id: [f"event:{e}" for e in events] + [f"indicator:{i}" for i in indicators]
        for case, (events, indicators) in cases.items()
    }
    return page(
        request,
        session,
        "campaign.html",
        campaign=v,
        cases=cases,
        case_nodes=case_nodes,
        spots=spots,
        size=GRAPH_SIZE,
    )
