"""UI page for the audit log: newest first, paged by sequence number, and chain verification.

Which records a principal sees is decided by the audit service and the access policy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal, Role
from concord.audit import service
from concord.audit.model import ACTIONS, OBJECT_KINDS
from concord.errors import FaultLocation, Faults, Forbidden, InvalidInput
from concord.events.service import search_time
from concord.web.deps import get_db
from concord.web.ui import PageFilters, page, ui_principal

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def _can_verify(p: Principal) -> bool:
    return p.is_centre and p.role == Role.ADMIN


def _detail(text: str | None) -> str:
    try:
        data: Any = json.loads(text or "{}")
    except ValueError:
        return text or ""
    if not data:
        return ""
    if isinstance(data, dict):
        return ", ".join(f"{k}={v}" for k, v in data.items())
    return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class AuditFilters(PageFilters):
    actor: str = ""
    action: str = ""
    object_kind: str = ""
    since: str = ""


def _since(value: str) -> datetime | None:
    """A day or a time, read as the event search reads it; a fault is told beside the form."""
    if not value:
        return None
    try:
        return search_time(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), FaultLocation(field="since")) from None


def _audit_page(
    request: Request,
    session: Session,
    p: Principal,
    before: str | None,
    filters: AuditFilters,
    verify: service.VerifyResult | None = None,
) -> Response:
    before_seq = int(before) if before and before.isdigit() else None
    may_read = policy.may_read_audit(p)  # else the page says who reads it
    rows: list[service.AuditEntry] = []
    error: InvalidInput | None = None
    if may_read:
        # the filters that cannot be read are told beside the form, all at once, as typed
        faults = Faults()
        since = faults.check(lambda: _since(filters.since.strip()), None)
        faults.check(lambda: service.check_filters(filters.action, filters.object_kind), None)
        try:
            faults.raise_any()
            rows = service.search(
                session,
                p,
                actor=filters.actor.strip() or None,
                action=filters.action or None,
                object_kind=filters.object_kind or None,
                since=since,
                before_seq=before_seq,
                limit=PAGE_SIZE,
            )
        except InvalidInput as exc:
            error = exc
    return page(
        request,
        session,
        "audit.html",
        status=error.status if error else 200,
        error=error,
        rows=[(r, _detail(r.detail)) for r in rows],
        older=rows[-1].seq if len(rows) == PAGE_SIZE else None,
        newest=before_seq is None,
        can_verify=_can_verify(p),
        may_read=may_read,
        verify=verify,
        filters=filters,
        actions=ACTIONS,
        object_kinds=OBJECT_KINDS,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    before: str | None = None,
    actor: str = "",
    action: str = "",
    object_kind: str = "",
    since: str = "",
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    filters = AuditFilters(actor, action, object_kind, since)
    return _audit_page(request, session, p, before, filters)


@router.get("/audit/verify", response_class=HTMLResponse)
def verify_chain(
    request: Request,
    before: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    """Reads only, so a GET; the page's button asks for it with htmx and swaps the result in."""
    if not _can_verify(p):
        raise Forbidden("only the centre's admins verify the whole audit chain")
    result = service.verify(session)
    return _audit_page(request, session, p, before, AuditFilters(), verify=result)
