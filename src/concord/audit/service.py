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
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    exists,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal
from concord.audit.model import ACTIONS, OBJECT_KINDS, AuditHead, AuditRecord
from concord.db import utcnow, write_for_read
from concord.errors import FaultLocation, Faults, Forbidden, InvalidInput

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
    if action not in ACTIONS or object_kind not in OBJECT_KINDS:
        # a word the page cannot name, nor its filter find: a mistake in the caller
        raise ValueError(f"unlisted audit action or object kind: {action!r} {object_kind!r}")
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
    request, listing their ids), as the TLP duty of care asks. A case read under a label it
    may later be widened from (RED, AMBER+STRICT) is listed in a record of its own that keeps
    the label: who could read it then is shown only to those who may read it so."""
    from concord.cases.service import NARROW_LABELS  # cases record through here

    groups: dict[str | None, list[int]] = {}
    for obj in objects:
        level = getattr(obj, "tlp", "clear")
        if level in ("clear", "green"):
            continue
        label = level if object_kind == "case" and level in NARROW_LABELS else None
        groups.setdefault(label, []).append(obj.id)
    if groups:
        write_for_read(session, lambda s: _record_read_groups(s, principal, object_kind, groups))


def _record_read_groups(
    session: Session, principal: Principal, object_kind: str, groups: dict[str | None, list[int]]
) -> None:
    from concord.cases.service import AUDIT_LABEL

    for label, ids in groups.items():
        detail: dict[str, Any] = {"ids": ids}
        if label is not None:
            detail[AUDIT_LABEL] = label
        record(session, principal, "read", object_kind, ids[0] if len(ids) == 1 else None, detail)


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


@dataclass(frozen=True)
class AuditEntry:
    """An audit record as one reader sees it: ids of objects hidden from the reader left out
    of its detail, and then no hash, which would let a reader test guesses at what was left
    out. The stored record is untouched, so the chain still verifies."""

    seq: int
    at: datetime
    actor: str
    address: str | None
    action: str
    object_kind: str
    object_id: str | None
    detail: str
    hash: str | None


# Kinds of object under TLP that records name by id, and where a record lists more of them:
# reads list the ids read, a case's links list the events and indicators linked.
GOVERNED_KINDS = ("event", "case", "submission", "report", "organization")
_LISTS = {"ids": None, "events": "event", "indicators": "indicator"}
# kind -> (its id column, the policy's condition that the reader may see the row)
Governed = dict[str, tuple[Any, ColumnElement[bool]]]


def _governed(session: Session, principal: Principal) -> Governed:
    """For each kind of object under TLP, its id column and the policy's filter of what
    `principal` may see of it."""
    from concord.cases.model import Case

    # indicators carry no label: the cases' rule, visible through a visible event
    from concord.cases.service import visible_indicator
    from concord.events.model import Event, Indicator, Submission
    from concord.orgs.model import Organization
    from concord.reports.model import StoredReport
    from concord.reports.service import visible_filter

    return {
        "event": (Event.id, policy.tlp_filter(principal, Event)),
        "case": (Case.id, policy.tlp_filter(principal, Case)),
        "submission": (Submission.id, policy.submission_filter(principal, Submission)),
        "report": (StoredReport.id, visible_filter(session, principal)),
        "organization": (Organization.id, policy.org_filter(principal)),
        "indicator": (Indicator.id, visible_indicator(principal)),
    }


def _object_visible(governed: Governed) -> ColumnElement[bool]:
    """SQL: the record names no object under TLP, or one the reader may see. A CASE, so that
    an object_id is cast to a number only where it is an id: organisations are named by slug
    but in reads, and a report request by the request's id (a request is its requester's
    alone and holds no content, so its record is left to the actor's scope)."""
    from concord.orgs.model import Organization

    org_id, org_visible = governed["organization"]
    whens: list[tuple[Any, Any]] = [
        (AuditRecord.object_id.is_(None), true()),
        (
            and_(AuditRecord.object_kind == "organization", AuditRecord.action != "read"),
            exists(select(org_id).where(Organization.slug == AuditRecord.object_id, org_visible)),
        ),
        (and_(AuditRecord.object_kind == "report", AuditRecord.action == "request"), true()),
    ]
    for kind in GOVERNED_KINDS:
        id_column, visible = governed[kind]
        named = id_column == cast(AuditRecord.object_id, BigInteger)
        whens.append(
            (AuditRecord.object_kind == kind, exists(select(id_column).where(named, visible)))
        )
    return case(*whens, else_=true())


def _listed(kind: str, key: str) -> str | None:
    """The kind of object a list in a record's detail names."""
    if key == "ids":
        return kind if kind in GOVERNED_KINDS else None
    return _LISTS[key] if kind == "case" else None


def _as_seen(
    session: Session,
    principal: Principal,
    governed: Governed,
    rows: Iterable[AuditRecord],
) -> list[AuditEntry]:
    """The records as `principal` sees them: lists of ids in a detail keep the ids of objects
    the principal may see; a record whose lists named hidden objects only is left out, as
    its very presence tells that they exist."""
    parsed: list[tuple[AuditRecord, Any]] = []
    wanted: dict[str, set[int]] = {}
    for rec in rows:
        try:
            detail: Any = json.loads(rec.detail or "{}")
        except ValueError:
            detail = None
        parsed.append((rec, detail))
        if not isinstance(detail, dict):
            continue
        for key in _LISTS:
            kind = _listed(rec.object_kind, key)
            if kind and isinstance(detail.get(key), list):
                wanted.setdefault(kind, set()).update(i for i in detail[key] if isinstance(i, int))
    seen: dict[str, set[int]] = {}
    for kind, ids in wanted.items():
        id_column, visible = governed[kind]
        seen[kind] = set(session.scalars(select(id_column).where(id_column.in_(ids), visible)))
    hidden = _hidden_under_label(session, principal, parsed)
    out = []
    for rec, detail in parsed:
        if rec.seq in hidden:
            continue
        shown, withheld, listed = detail, False, False
        if isinstance(detail, dict):
            shown = dict(detail)
            for key in _LISTS:
                kind = _listed(rec.object_kind, key)
                if kind and isinstance(detail.get(key), list):
                    listed = True
                    shown[key] = [i for i in detail[key] if i in seen.get(kind, set())]
                    withheld = withheld or len(shown[key]) < len(detail[key])
            if listed and withheld and not any(shown.get(k) for k in _LISTS):
                continue
        out.append(
            AuditEntry(
                seq=rec.seq,
                at=rec.at,
                actor=rec.actor,
                address=rec.address,
                action=rec.action,
                object_kind=rec.object_kind,
                object_id=rec.object_id,
                detail=(
                    json.dumps(shown, sort_keys=True, ensure_ascii=False)
                    if withheld
                    else rec.detail
                ),
                hash=None if withheld else rec.hash,
            )
        )
    return out


def _hidden_under_label(
    session: Session, principal: Principal, parsed: list[tuple[AuditRecord, Any]]
) -> set[int]:
    """The records of what was done to a case under a label narrower than its present one
    (RED, AMBER+STRICT) that `principal` may not read: the case's timeline hides the entry,
    and so does the log."""
    from concord.cases.model import Case
    from concord.cases.service import AUDIT_LABEL, NARROW_LABELS, narrower

    labelled: dict[str, dict[int, list[int]]] = {}
    for rec, detail in parsed:
        label = detail.get(AUDIT_LABEL) if isinstance(detail, dict) else None
        if rec.object_kind != "case" or label not in NARROW_LABELS:
            continue
        # a change names its case; a read may list several, each read under the label
        named = [int(rec.object_id)] if (rec.object_id or "").isdigit() else detail.get("ids")
        for case_id in named if isinstance(named, list) else []:
            if isinstance(case_id, int):
                labelled.setdefault(label, {}).setdefault(case_id, []).append(rec.seq)
    hidden: set[int] = set()
    for label, cases in labelled.items():
        visible = policy.tlp_filter(principal, Case, narrower(literal(label), Case.tlp))
        shown = set(session.scalars(select(Case.id).where(Case.id.in_(cases), visible)))
        hidden.update(seq for case_id in cases.keys() - shown for seq in cases[case_id])
    return hidden


def _known_word(value: str, words: dict[str, str], what: str, field: str) -> None:
    if value not in words:
        raise InvalidInput(
            f"unknown {what} {value!r}; use one of {', '.join(words)}", FaultLocation(field=field)
        )


def check_filters(action: str | None, object_kind: str | None) -> None:
    """An action or a kind the log never records would find nothing: told, not answered
    with an empty log; both at once."""
    faults = Faults()
    if action:
        faults.check(lambda: _known_word(action, ACTIONS, "action", "action"), None)
    if object_kind:
        faults.check(
            lambda: _known_word(object_kind, OBJECT_KINDS, "kind of object", "object_kind"), None
        )
    faults.raise_any()


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
) -> list[AuditEntry]:
    """Newest first, up to `limit` records as `principal` may see them (`policy.audit_filter`,
    and each record about an object under TLP only where that object shows). Only admins
    read it, with the admin scope."""
    try:
        policy.check_audit_read(principal)
    except policy.AccessDenied as exc:
        raise Forbidden(str(exc)) from exc
    check_filters(action, object_kind)
    governed = _governed(session, principal)
    stmt = select(AuditRecord).where(
        policy.audit_filter(principal, AuditRecord.actor_org_id, _object_visible(governed))
    )
    if actor:
        stmt = stmt.where(AuditRecord.actor == actor)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if object_kind:
        stmt = stmt.where(AuditRecord.object_kind == object_kind)
    if since is not None:
        stmt = stmt.where(AuditRecord.at >= since)
    out: list[AuditEntry] = []
    before = before_seq
    # Records left out after reading (see _as_seen) are made up for from older ones, so a
    # short page still means the last one.
    while len(out) < limit:
        page = stmt.where(AuditRecord.seq < before) if before else stmt
        rows = list(session.scalars(page.order_by(AuditRecord.seq.desc()).limit(limit)))
        out += _as_seen(session, principal, governed, rows)
        if len(rows) < limit:
            break
        before = rows[-1].seq
    return out[:limit]
