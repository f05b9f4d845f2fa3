"""UI pages for generalized reports (thin: parse, call, render).

Which reports a user may read or build is decided by reports.service; these views never filter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal
from concord.audit import service as audit
from concord.errors import ConcordError
from concord.reports import period as periods
from concord.reports import render, service, tasks
from concord.web.deps import get_db
from concord.web.ui import check_csrf, language_of, page, ui_principal

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def _after(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _list_page(
    request: Request,
    session: Session,
    p: Principal,
    *,
    after: str | None = None,
    form: dict[str, str] | None = None,
    error: ConcordError | None = None,
) -> Response:
    rows = service.list_reports(session, p, after_id=_after(after), limit=PAGE_SIZE)
    scopes = service.buildable_scopes(session, p)
    requests = service.recent_requests(session, p) if scopes else []
    default_period = periods.previous_month(datetime.now(UTC)).label
    return page(
        request,
        session,
        "report_list.html",
        status=error.status if error else 200,
        rows=rows,
        scope_of=service.split_scope,  # a state's report seen by the centre is marked so
        scopes=scopes,
        form=form or {"period": default_period, "scope": scopes[0] if scopes else ""},
        error=error,
        next_after=rows[-1].id if len(rows) == PAGE_SIZE else None,
        receives_reports=policy.receives_reports(p),
        requests=requests,
        centre_asks=p.is_centre,  # a state's report it asks for is its version of it
        # the page follows a build by reloading itself until no request is pending
        pending=any(r.status in ("queued", "building") for r in requests),
    )


@router.get("/reports", response_class=HTMLResponse)
def reports(
    request: Request,
    after: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _list_page(request, session, p, after=after)


@router.post("/reports", response_class=HTMLResponse)
def build_report(
    request: Request,
    period: str = Form(""),
    scope: str = Form(""),
    csrf_token: str = Form(""),
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    form = {"period": period, "scope": scope}
    try:
        check_csrf(request, csrf_token)
        req = service.request_report(session, p, period, scope)
    except ConcordError as exc:
        session.rollback()
        return _list_page(request, session, p, form=form, error=exc)
    session.commit()
    tasks.queue_request(req.id)
    return RedirectResponse(f"/reports#request-{req.id}", status_code=303)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report(
    request: Request,
    report_id: int,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    row = service.get_report(session, p, report_id)
    audit.record_reads(session, p, "report", [row])
    lang = language_of(request, p)
    context = render.context(service.load(row), lang)
    context.pop("_")  # the page supplies its own translator, for the same language
    context.pop("lang")
    return page(request, session, "report_view.html", stored=row, **context)
