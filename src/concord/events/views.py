"""UI pages for events: search and detail (thin)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal
from concord.audit import service as audit
from concord.db import as_utc
from concord.errors import ConcordError, FaultLocation, Faults, InvalidInput
from concord.events import correlation, service
from concord.events.rsit import CLASS_LABELS, RSIT
from concord.web.deps import get_db
from concord.web.ui import check_csrf, page, ui_principal

router = APIRouter(include_in_schema=False)
PAGE = 100


def _date(value: str, name: str, *, until: bool = False) -> datetime | None:
    """A date field of the search form, read as the API reads it (a bare day as "until"
    includes that whole day); a fault is told beside the form."""
    if not value:
        return None
    try:
        return service.search_time(value, until=until)
    except ValueError as exc:
        raise InvalidInput(str(exc), FaultLocation(field=name)) from None


MAX_ID = 2**63 - 1  # ids are 64-bit keys


def _position(value: str) -> tuple[datetime, int] | None:
    """Where the previous page ended: `<ISO time>_<event id>`."""
    if not value:
        return None
    time, _, number = value.rpartition("_")
    try:
        parsed = datetime.fromisoformat(time)
    except ValueError:
        parsed = None
    try:
        if parsed is None or not number.isdigit() or int(number) > MAX_ID:
            raise ValueError(value)
        return as_utc(parsed), int(number)
    except ValueError:
        raise InvalidInput(
            f"invalid page position {value!r}", FaultLocation(field="before")
        ) from None


def _submission_number(value: str) -> int:
    # Said in words of its own, not by the query's field name, so that a page in another
    # language says it whole.
    if not value:
        return 0
    where = FaultLocation(field="submission")
    if not value.isdigit():
        raise InvalidInput(f"the submission number must be a whole number, not {value!r}", where)
    if int(value) > MAX_ID:  # on the form, as any other fault, not as a database's refusal
        raise InvalidInput(f"no submission has the number {value}: it is past any id", where)
    return int(value)


@router.get("/events", response_class=HTMLResponse)
def events_page(
    request: Request,
    value: str = "",
    # The API's names, so an address works on both; "rsit_class" is what the form once sent.
    rsit_class: str = Query("", alias="class"),
    older_class: str = Query("", alias="rsit_class"),
    rsit_type: str = Query("", alias="type"),
    country: str = "",
    owner: str = "",
    since: str = "",
    until: str = "",
    submission: str = "",
    feed: str = "",
    before: str = "",
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    # The filters that cannot be read are answered on the same page, all at once, each
    # field marked, the others kept as typed.
    error: ConcordError | None = None
    inverted, rows, receipt = False, [], False
    rsit_class = rsit_class or older_class
    faults = Faults()
    q = service.EventQuery(
        value.strip() or None,  # a search box holding spaces is empty
        faults.check(lambda: _date(since, "since"), None),
        faults.check(lambda: _date(until, "until", until=True), None),
        rsit_class or None,
        rsit_type or None,
        country or None,
        owner or None,
        feed.strip() or None,
        0,
        PAGE,
        submission_id=faults.check(lambda: _submission_number(submission), 0) or None,
        newest_first=True,
        before=faults.check(lambda: _position(before), None),
    )
    inverted = q.since is not None and q.until is not None and q.since >= q.until
    try:
        if inverted:  # said beside the form, not as a fault; the other filters are checked
            service.check_filters(session, p, replace(q, until=None), faults)
        else:
            rows = service.search(session, p, q, faults)
        # the submission's receipt is linked only where it opens for this user
        if q.submission_id is not None:
            receipt = service.shows_receipt(session, p, q.submission_id)
    except InvalidInput as exc:
        error = exc
    # Only the organisations this user may see are named (and linked: their pages open).
    slugs = service.org_slugs(
        session, p, {e.origin_org_id for e in rows} | {e.owner_org_id for e in rows}
    )
    audit.record_reads(session, p, "event", rows)
    filters = {
        "value": value,
        "class": rsit_class,
        "type": rsit_type,
        "country": country,
        "owner": owner,
        "since": since,
        "until": until,
        "submission": submission,
        "feed": feed,
    }
    return page(
        request,
        session,
        "events.html",
        status=422 if error else 200,
        rows=rows,
        slugs=slugs,
        inverted=inverted,
        error=error,
        filters=filters,
        receipt=receipt,
        paged=bool(before),  # a later page links back to the newest
        classes=sorted(RSIT),
        types=RSIT,
        class_labels=CLASS_LABELS,
        next_before=f"{rows[-1].time.isoformat()}_{rows[-1].id}" if len(rows) == PAGE else None,
    )


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(
    event_id: int,
    request: Request,
    shared: str = "",
    already: str = "",
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _event_page(request, session, p, event_id, shared=shared, already=already)


def _event_page(
    request: Request,
    session: Session,
    p: Principal,
    event_id: int,
    *,
    status: int = 200,
    error: ConcordError | None = None,
    shared: str = "",
    already: str = "",
    share_form: dict[str, str] | None = None,
) -> Response:
    event = service.get_event(session, p, event_id)
    audit.record_reads(session, p, "event", [event])
    # Only the organisations this user may see are named (and linked: their pages open).
    slugs = service.org_slugs(session, p, {event.origin_org_id, event.owner_org_id})
    may_share = policy.may_share_event(p, event) and event.tlp in ("amber", "amber+strict")
    from concord.cases.service import can_write as may_write_cases  # cases build on events
    from concord.cases.service import cases_linking

    linking = list(cases_linking(session, p, [event.id], []))
    audit.record_reads(session, p, "case", linking)
    observables = service.observables(session, [event.id]).get(event.id, [])
    # which of its values the reader sees reported by two or more states
    cross_state = {
        v.value
        for o in observables
        for v in correlation.find_indicators(session, p, o["value"], o["kind"])
        if v.cross_state
    }

    return page(
        request,
        session,
        "event.html",
        status=status,
        may_open_case=may_write_cases(p, None),
        extra=service.extra_fields(event),
        may_share=may_share,
        recipients=service.event_recipients(session, p, event.id) if may_share else [],
        share_choices=service.share_candidates(session, p, event) if may_share else [],
        share_error=error,
        # after a failed share, what was chosen and typed (else the owner is proposed)
        share_form=share_form,
        shared=shared,
        already=already,
        event=event,
        observables=observables,
        cross_state=cross_state,
        campaign=_campaign_of(session, p, event.id),
        cases=linking,
        slugs=slugs,
        raw=service.raw_record(session, event),
        class_labels=CLASS_LABELS,
    )


def _campaign_of(session: Session, p: Principal, event_id: int) -> correlation.CampaignView | None:
    """The campaign the event belongs to, when the reader sees it hold this event and
    events of two states."""
    found = correlation.campaign_holding(session, p, event_id)
    return found[0] if found is not None else None


@router.post("/events/{event_id}/shares", response_class=HTMLResponse)
def share_event(
    event_id: int,
    request: Request,
    org: str = Form(""),
    other_org: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    # A failed share, an expired form included, is told beside the form with what was typed.
    share_form = {"org": org, "other_org": other_org}
    org = other_org.strip() or org
    try:
        check_csrf(request, csrf_token)
        if not org:
            raise InvalidInput("choose an organisation", FaultLocation(field="org"))
        added = service.share_event(session, p, event_id, org)
    except ConcordError as exc:
        session.rollback()
        return _event_page(
            request, session, p, event_id, status=exc.status, error=exc, share_form=share_form
        )
    session.commit()
    # Back to the event's own address: reloading it does not send the form again.
    said = urlencode({"shared" if added else "already": org})
    return RedirectResponse(f"/events/{event_id}?{said}", status_code=303)
