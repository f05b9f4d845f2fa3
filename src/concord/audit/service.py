"""Appends to the audit log and verifies its hash chain.

Each record's hash covers its content and the previous record's hash, so altering or
removing any record breaks the chain from that point; `audit_head` remembers the last
sequence number and hash so that cutting records off the end is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.audit.model import AuditHead, AuditRecord
from concord.db import utcnow

GENESIS = "0" * 64
# Who acts when no principal does: the command line sets this to the operator's login.
system_actor: ContextVar[str] = ContextVar("system_actor", default="system")
_PG_AUDIT_LOCK = 7_262_001  # advisory lock key that serialises appends on PostgreSQL


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def _fields(rec: AuditRecord) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "at": rec.at.isoformat(timespec="microseconds"),
        "actor_user_id": rec.actor_user_id,
        "actor": rec.actor,
        "actor_org_id": rec.actor_org_id,
        "address": rec.address,
        "action": rec.action,
        "object_kind": rec.object_kind,
        "object_id": rec.object_id,
        "detail": rec.detail,
    }


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_kind: str,
    object_id: object | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record in the caller's transaction (so it commits or rolls back with it)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    head = session.get(AuditHead, 1)
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    actor = system_actor.get()
    if principal is not None and not principal.anonymous:
        actor = principal.username or f"user:{principal.user_id}"
    elif principal is not None:
        actor = "anonymous"
    rec = AuditRecord(
        seq=head.seq + 1,
        at=utcnow(),
        actor_user_id=principal.user_id if principal else None,
        actor=actor,
        actor_org_id=principal.org_id if principal else None,
        address=principal.address if principal else None,
        action=action,
        object_kind=object_kind,
        object_id=None if object_id is None else str(object_id),
        detail=json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, default=str),
        prev_hash=head.hash,
    )
    rec.hash = _digest(rec.prev_hash, _fields(rec))
    session.add(rec)
    head.seq = rec.seq
    head.hash = rec.hash
    session.flush()
    return rec


def record_reads(
    session: Session,
    principal: Principal,
    object_kind: str,
    objects: Iterable[Any],
) -> None:
    """Log that `principal` read objects marked AMBER, AMBER+STRICT or RED (one record per
    request, listing their ids), as the TLP duty of care asks."""
    ids = [o.id for o in objects if getattr(o, "tlp", "clear") not in ("clear", "green")]
    if ids:
        record(
            session, principal, "read", object_kind, ids[0] if len(ids) == 1 else None, {"ids": ids}
        )


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.problem}"


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _stream(session: Session, batch: int = 5000) -> Iterator[AuditRecord]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.seq > last).order_by(AuditRecord.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> VerifyResult:
    problems: list[ChainProblem] = []
    expected_seq = 1
    prev_hash = GENESIS
    checked = 0
    for rec in _stream(session):
        checked += 1
        if rec.seq != expected_seq:
            gap = (
                f"records {expected_seq}-{rec.seq - 1} were removed"
                if rec.seq - expected_seq > 1
                else f"record {expected_seq} was removed"
            )
            problems.append(ChainProblem(expected_seq, gap))
        elif rec.prev_hash != prev_hash:
            problems.append(ChainProblem(rec.seq, "does not link to the record before it"))
        if _digest(rec.prev_hash, _fields(rec)) != rec.hash:
            problems.append(
                ChainProblem(rec.seq, "was altered (its content no longer matches its hash)")
            )
        prev_hash = rec.hash
        expected_seq = rec.seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and head.seq >= expected_seq:
        problems.append(
            ChainProblem(expected_seq, f"records {expected_seq}-{head.seq} at the end were removed")
        )
    elif head is not None and head.seq == expected_seq - 1 and head.hash != prev_hash:
        problems.append(ChainProblem(head.seq, "the last record differs from the recorded head"))
    return VerifyResult(checked, tuple(problems))


def search(
    session: Session,
    principal: Principal,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_kind: str | None = None,
    since: Any = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    from concord.access.policy import audit_filter

    stmt = select(AuditRecord).where(audit_filter(principal, AuditRecord.actor_org_id))
    if actor:
        stmt = stmt.where(AuditRecord.actor == actor)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if object_kind:
        stmt = stmt.where(AuditRecord.object_kind == object_kind)
    if since is not None:
        stmt = stmt.where(AuditRecord.at >= since)
    if before_seq:
        stmt = stmt.where(AuditRecord.seq < before_seq)
    return list(session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(limit)))
