"""UI pages for coordination cases: the board and the case page (thin: parse, call, render).

Visibility is decided by the service through the access policy; these views never filter.
Every form posts with the CSRF token and answers with a redirect (Post/Redirect/Get), or
with the page and the error next to the form that caused it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from concord.access.model import TLP, Principal
from concord.audit import service as audit
from concord.cases import service
from concord.cases.model import TRANSITIONS, Case, CaseStatus, Resolution, Severity
from concord.errors import ConcordError, FaultLocation, Faults, InvalidInput, NotFound
from concord.web.deps import get_db
from concord.web.ui import check_csrf, page, ui_principal

router = APIRouter(include_in_schema=False)

PER_COLUMN = 50
MAX_PER_COLUMN = 1000  # a column shown whole; more is for the search and the API
SPLIT = re.compile(r"[\s,;]+")


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _words(text: str) -> list[str]:
    return [w for w in SPLIT.split(text or "") if w]


def _shown(value: str) -> int:
    """How many cards a column shows: at least a page, at most `MAX_PER_COLUMN`."""
    if not value.strip():
        return PER_COLUMN
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(
            f"the number of cases a column shows is a whole number, not {value!r}",
            FaultLocation(field="shown"),
        ) from None
    return min(max(number, PER_COLUMN), MAX_PER_COLUMN)


def _ids(text: str) -> list[int]:
    words = _words(text.replace("#", " "))
    bad = [w for w in words if not w.isdigit()]
    if bad:
        raise InvalidInput(
            f"event ids are numbers: {', '.join(bad[:5])}", FaultLocation(field="event_ids")
        )
    return [int(w) for w in words]


# --- the board -----------------------------------------------------------------------------


def _board(
    request: Request,
    session: Session,
    p: Principal,
    filters: dict[str, str],
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    error: ConcordError | None = None,
    shown: int = 0,
    faults: Faults | None = None,
) -> Response:
    """The board; `faults` holds those of the address's other parameters, told with the
    filters' own."""
    shown = shown or PER_COLUMN
    faults = faults or Faults()
    query = service.CaseFilters(**{k: _blank(v) for k, v in filters.items()})
    found = faults.check(lambda: service.board(session, p, query, per_column=shown), None)
    filter_error: InvalidInput | None = None
    try:
        faults.raise_any()  # every fault at once
    except InvalidInput as exc:
        filter_error, status = exc, exc.status
    if found is None or filter_error is not None:
        # Told beside the filters with no board: empty columns would read as "no such cases".
        found = service.Board({s.value: [] for s in CaseStatus}, {})
    cases: list[Case] = [c for column in found.columns.values() for c in column]
    audit.record_reads(session, p, Case.object_kind, cases)
    may_open = service.can_write(p, None)
    return page(
        request,
        session,
        "case_board.html",
        status=status,
        board=found,
        statuses=[s.value for s in CaseStatus],
        severities=[s.value for s in Severity],
        tlps=[t.value for t in TLP],
        filters=filters,
        filter_error=filter_error,
        more=min(shown + PER_COLUMN, MAX_PER_COLUMN) if shown < MAX_PER_COLUMN else None,
        participants=service.participant_slugs(session, [c.id for c in cases]),
        names=service.usernames(session, [c.assignee_user_id for c in cases]),
        may_open=may_open,
        choices=service.participant_choices(session, p, service.Parties()) if may_open else [],
        form=form or {"severity": Severity.MEDIUM.value, "tlp": ""},
        error=error,
    )


@router.get("/cases", response_class=HTMLResponse)
def cases_board(
    request: Request,
    status: str | None = None,
    severity: str | None = None,
    country: str | None = None,
    assignee: str | None = None,
    q: str | None = None,
    events: str = "",
    indicators: str = "",
    shown: str = "",
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """The board; `events` and `indicators` fill in the form for a new case (the links
    "open a case" of an event and an indicator page); `shown` cards per column (a column's
    "show more" raises it)."""
    filters = {
        "status": status or "",
        "severity": severity or "",
        "country": country or "",
        "assignee": assignee or "",
        "q": q or "",
    }
    form = {
        "severity": Severity.MEDIUM.value,
        "tlp": "",
        "event_ids": events[:2000],
        "indicators": indicators[:2000],
    }
    faults = Faults()
    per_column = faults.check(lambda: _shown(shown), PER_COLUMN)
    return _board(request, session, p, filters, form=form, shown=per_column, faults=faults)


@router.post("/cases", response_class=HTMLResponse)
def create_case(
    request: Request,
    title: str = Form(""),
    summary: str = Form(""),
    severity: str = Form(Severity.MEDIUM.value),
    tlp: str = Form(""),
    event_ids: str = Form(""),
    indicators: str = Form(""),
    participants: list[str] = Form([]),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    form = {
        "title": title,
        "summary": summary,
        "severity": severity,
        "tlp": tlp,
        "event_ids": event_ids,
        "indicators": indicators,
        "participants": participants,
    }
    try:
        check_csrf(request, csrf_token)
        case = service.create_case(
            session,
            p,
            service.CaseInput(
                title=title,
                summary=summary,
                severity=severity or Severity.MEDIUM.value,
                tlp=_blank(tlp),
                event_ids=_ids(event_ids),
                indicators=_words(indicators),
                participants=[s for s in participants if s],
            ),
        )
    except ConcordError as exc:
        session.rollback()
        filters = dict.fromkeys(("status", "severity", "country", "assignee", "q"), "")
        return _board(request, session, p, filters, status=exc.status, form=form, error=exc)
    session.commit()
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


# --- one case ------------------------------------------------------------------------------


def _case_page(
    request: Request,
    session: Session,
    p: Principal,
    case_id: int,
    *,
    status: int = 200,
    failed: str | None = None,
    error: ConcordError | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    d = service.case_detail(session, p, case_id)
    audit.record_reads(session, p, Case.object_kind, [d.case])
    writable = service.can_write(p, d.case, d.parties)
    sharing = service.can_write(p, d.case, d.parties, share=True)
    closed = d.case.status == CaseStatus.CLOSED
    return page(
        request,
        session,
        "case_detail.html",
        status=status,
        d=d,
        case=d.case,
        timeline=[(t.entry, t.detail) for t in d.timeline],
        writable=writable,
        sharing=sharing and not closed,
        closed=closed,
        # in the workflow's order (new, triage, in progress, resolved, closed)
        next_statuses=[s.value for s in CaseStatus if s in TRANSITIONS[CaseStatus(d.case.status)]],
        # the resolution is asked where the status form can resolve or close the case
        ending=any(s in TRANSITIONS[CaseStatus(d.case.status)] for s in service.ENDED),
        resolutions=[r.value for r in Resolution],
        # a participating state (not the originator) may leave the case
        leaving=writable
        and not closed
        and p.org_id in d.parties.org_ids
        and p.org_id != d.case.origin_org_id,
        severities=[s.value for s in Severity],
        tlps=[t.value for t in TLP],
        assignable=service.assignable_users(session, d.case, d.parties) if writable else [],
        choices=service.participant_choices(session, p, d.parties, d.case) if sharing else [],
        failed=failed,
        error=error,
        form=form or {},
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: int,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _case_page(request, session, p, case_id)


def _act(
    request: Request,
    session: Session,
    p: Principal,
    case_id: int,
    csrf_token: str,
    name: str,
    action: Any,
    form: dict[str, Any] | None = None,
) -> Response:
    """Run one form's action: CSRF first, then the service; redirect to the part of the page
    that changed, or show the page again with the error next to the form `name`."""
    try:
        check_csrf(request, csrf_token)
        action()
    except ConcordError as exc:
        session.rollback()
        return _case_page(
            request, session, p, case_id, status=exc.status, failed=name, error=exc, form=form
        )
    session.commit()
    try:
        service.get_case(session, p, case_id)
    except NotFound:
        # the change took the case out of the writer's view (they withdrew their state)
        return RedirectResponse("/cases", status_code=303)
    return RedirectResponse(f"/cases/{case_id}#{name}", status_code=303)


@router.post("/cases/{case_id}/comments", response_class=HTMLResponse)
def add_comment(
    request: Request,
    case_id: int,
    text: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "comment",
        lambda: service.add_comment(session, p, case_id, text),
        {"text": text},
    )


@router.post("/cases/{case_id}/status", response_class=HTMLResponse)
def change_status(
    request: Request,
    case_id: int,
    status: str = Form(""),
    resolution: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    def action() -> None:
        # the resolution chooser stays on the form; it counts only where the case ends
        ending = status.strip().lower() in service.ENDED
        service.set_status(session, p, case_id, status, resolution if ending else None)

    form = {"status": status, "resolution": resolution}  # as chosen, should it be refused
    return _act(request, session, p, case_id, csrf_token, "workflow", action, form)


@router.post("/cases/{case_id}/details", response_class=HTMLResponse)
def change_details(
    request: Request,
    case_id: int,
    severity: str = Form(""),
    tlp: str = Form(""),
    title: str | None = Form(None),
    summary: str | None = Form(None),
    part: str = Form(""),
    was_severity: str | None = Form(None),
    was_tlp: str | None = Form(None),
    was_title: str | None = Form(None),
    was_summary: str | None = Form(None),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    # Two forms post here: severity and TLP ("labels"), or title and summary ("text"). Each
    # says what the page showed: only what was changed on it is saved, so a colleague's
    # change made meanwhile to another field stands; and an emptied summary is saved.
    shown: dict[str, str] = {}
    name, form = "workflow", {"title": title, "summary": summary}
    if part == "labels":
        changes, shown = _changed({"severity": (severity, was_severity), "tlp": (tlp, was_tlp)})
        changes = {k: v for k, v in changes.items() if v}
    elif part == "text":
        changes, shown = _changed({"title": (title, was_title), "summary": (summary, was_summary)})
        # refused, it is told in its own section, open, with what was typed: a field
        # emptied arrives as no value at all
        name, form = "edit-case", {"title": title or "", "summary": summary or ""}
    else:
        changes = {
            "severity": _blank(severity),
            "tlp": _blank(tlp),
            "title": title,
            "summary": summary,
        }
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        name,
        lambda: service.update_case(session, p, case_id, changes, shown),
        form=form,
    )


def _changed(
    fields: dict[str, tuple[str | None, str | None]],
) -> tuple[dict[str, str], dict[str, str]]:
    """The fields whose value differs from what the form was shown with, and what it was
    shown with (line ends as a browser sends them do not count)."""
    now = {key: _form_text(value) for key, (value, _was) in fields.items()}
    shown = {key: _form_text(was) for key, (_value, was) in fields.items()}
    return {key: value for key, value in now.items() if value != shown[key]}, shown


def _form_text(value: str | None) -> str:
    return (value or "").replace("\r\n", "\n")


@router.post("/cases/{case_id}/assign", response_class=HTMLResponse)
def assign(
    request: Request,
    case_id: int,
    assignee: str = Form(""),
    was_assignee: str | None = Form(None),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "workflow",
        # the form says whom it showed ("nobody" arrives as no value at all)
        lambda: service.assign(session, p, case_id, _blank(assignee), was_assignee or ""),
    )


@router.post("/cases/{case_id}/participants", response_class=HTMLResponse)
def add_participant(
    request: Request,
    case_id: int,
    org: str = Form(""),
    user: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    def action() -> None:
        if _blank(user):
            service.add_named_user(session, p, case_id, user)
        else:
            service.add_participant(session, p, case_id, org)

    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "participants",
        action,
        {"org": org, "user": user},
    )


@router.post("/cases/{case_id}/participants/remove", response_class=HTMLResponse)
def remove_participant(
    request: Request,
    case_id: int,
    org: str = Form(""),
    user: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    def action() -> None:
        if _blank(user):
            service.remove_named_user(session, p, case_id, user)
        else:
            service.remove_participant(session, p, case_id, org)

    return _act(request, session, p, case_id, csrf_token, "participants", action)


@router.post("/cases/{case_id}/techniques", response_class=HTMLResponse)
def add_technique(
    request: Request,
    case_id: int,
    technique_id: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "techniques",
        lambda: service.add_technique(session, p, case_id, technique_id),
        {"technique_id": technique_id},
    )


@router.post("/cases/{case_id}/events", response_class=HTMLResponse)
def link_events(
    request: Request,
    case_id: int,
    event_ids: str = Form(""),
    indicators: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "links",
        lambda: service.link(session, p, case_id, _ids(event_ids), _words(indicators)),
        {"event_ids": event_ids, "indicators": indicators},
    )


@router.post("/cases/{case_id}/techniques/remove", response_class=HTMLResponse)
def remove_technique(
    request: Request,
    case_id: int,
    technique_id: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "techniques",
        lambda: service.remove_technique(session, p, case_id, technique_id),
    )


@router.post("/cases/{case_id}/events/remove", response_class=HTMLResponse)
def unlink(
    request: Request,
    case_id: int,
    event_id: str = Form(""),
    indicator: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _act(
        request,
        session,
        p,
        case_id,
        csrf_token,
        "links",
        lambda: service.unlink(
            session, p, case_id, _ids(event_id), [indicator] if indicator.strip() else []
        ),
    )
