"""HTTP routes for the audit log (thin)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.audit import service
from concord.errors import Forbidden
from concord.web.deps import Limit, UtcDatetime, decode_cursor, encode_cursor, get_db, user

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    address: str | None
    action: str
    object_kind: str
    object_id: str | None
    detail: dict[str, Any]
    # none where the detail was narrowed for the reader: it would test guesses at the rest
    hash: str | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    problems: list[str]


@router.get("/audit", response_model=AuditPage)
def list_audit(
    actor: str | None = None,
    action: str | None = None,
    object_kind: str | None = None,
    since: UtcDatetime | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
    p: Principal = Depends(user),
    session: Session = Depends(get_db),
) -> AuditPage:
    """Newest first. Admins see the records of actors in their scope, of objects they may
    see; anyone else is refused."""
    before = decode_cursor(cursor) or None
    rows = service.search(
        session,
        p,
        actor=actor,
        action=action,
        object_kind=object_kind,
        since=since,
        before_seq=before,
        limit=limit,
    )
    items = [
        AuditOut(
            seq=r.seq,
            at=r.at,
            actor=r.actor,
            address=r.address,
            action=r.action,
            object_kind=r.object_kind,
            object_id=r.object_id,
            detail=json.loads(r.detail or "{}"),
            hash=r.hash,
        )
        for r in rows
    ]
    cursor_out = encode_cursor(rows[-1].seq) if len(rows) == limit else None
    return AuditPage(items=items, next_cursor=cursor_out)


@router.get("/audit/verify", response_model=VerifyOut)
def verify_audit(p: Principal = Depends(user), session: Session = Depends(get_db)) -> VerifyOut:
    if not (p.is_centre and p.role and p.role.value == "admin"):
        raise Forbidden("only the centre's admins verify the whole audit chain")
    result = service.verify(session)
    return VerifyOut(
        ok=result.ok, checked=result.checked, problems=[str(x) for x in result.problems]
    )
