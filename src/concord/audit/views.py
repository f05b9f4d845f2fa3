"""UI page for the audit log: newest first, paged by sequence number, and chain verification.

Which records a principal sees is decided by the audit service and the access policy only.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal, Role
from concord.audit import service
from concord.errors import Forbidden
from concord.web.deps import get_db
from concord.web.ui import page, ui_principal

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


def _audit_page(
    request: Request,
    session: Session,
    p: Principal,
    before: str | None,
    verify: service.VerifyResult | None = None,
) -> Response:
    before_seq = int(before) if before and before.isdigit() else None
    may_read = policy.may_read_audit(p)  # else the page says who reads it
    rows = service.search(session, p, before_seq=before_seq, limit=PAGE_SIZE) if may_read else []
    return page(
        request,
        session,
        "audit.html",
        rows=[(r, _detail(r.detail)) for r in rows],
        older=rows[-1].seq if len(rows) == PAGE_SIZE else None,
        newest=before_seq is None,
        can_verify=_can_verify(p),
        may_read=may_read,
        verify=verify,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    before: str | None = None,
    p: Principal = Depends(ui_principal),
    session: Session = Depends(get_db),
) -> Response:
    return _audit_page(request, session, p, before)


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
    return _audit_page(request, session, p, before, verify=result)
