"""Coordination cases: the only code that writes them.

Every read goes through the one access policy (`policy.tlp_filter(principal, Case)`), and a
write first loads the case through the same filter, so nobody changes a case they cannot see.
Who may change a visible case is decided by `check_case_write` alone. Every write appends to
the case's timeline and to the audit log in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, false, func, literal, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import TLP, Principal, Share, TokenScope, User
from concord.audit import service as audit
from concord.cases.model import (
    TECHNIQUE_RE,
    TRANSITIONS,
    Case,
    CaseEvent,
    CaseIndicator,
    CaseParticipant,
    CaseStatus,
    CaseTechnique,
    Resolution,
    Severity,
    TimelineEntry,
    TimelineKind,
)
from concord.db import chunks, contains_pattern, utcnow
from concord.errors import (
    Conflict,
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from concord.events.correlation import indicator_values
from concord.events.model import Event, EventObservable, Indicator
from concord.intake.readers.values import search_forms
from concord.orgs import validate
from concord.orgs.model import STATE_KINDS, Organization, OrgKind
from concord.reports.techniques import catalogue as attack_catalogue

KIND = Case.object_kind
MAX_TITLE = 300
MAX_TEXT = 20_000
MAX_LINKS = 1000  # events or indicators linked in one request
LABELS = ("severity", "tlp")
# Organisations that may take part in a case: the member states' national bodies, and the
# centre itself (it needs a share to see an AMBER+STRICT case of a member).
PARTICIPANT_KINDS = (OrgKind.NATIONAL_BODY, OrgKind.CENTRE)
STAFF = policy.STAFF_ROLES


# --- permissions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Parties:
    """Who takes part in a case: participating organisations and named users (TLP:RED)."""

    org_ids: frozenset[int] = frozenset()
    user_ids: frozenset[int] = frozenset()


def parties_of(session: Session, case: Case) -> Parties:
    orgs = session.scalars(select(CaseParticipant.org_id).where(CaseParticipant.case_id == case.id))
    users = session.scalars(
        select(Share.user_id).where(
            Share.object_kind == KIND, Share.object_id == case.id, Share.user_id.is_not(None)
        )
    )
    return Parties(frozenset(orgs), frozenset(u for u in users if u is not None))


def check_case_write(
    principal: Principal,
    case: Case | None,
    parties: Parties | None = None,
    *,
    share: bool = False,
    tlp: str | None = None,
) -> None:
    """The one rule for changing cases; `case` None asks whether the principal may open one.

    Centre admins and analysts work on every case they can see; national-body admins and
    analysts on the cases of their own organisation and those it takes part in. Widening or
    narrowing who receives a case (`share`: participants, named users, TLP) is for the
    originating organisation, as TLP leaves distribution to the source, and for the centre
    while the case is CLEAR, GREEN or AMBER (as the centre may pass AMBER events on). Making
    its TLP less strict (`tlp`, the label wanted) is the originating organisation's alone.
    Readers and owner contacts never write. Visibility itself is checked before, by loading
    the case through the access policy.
    """
    if principal.anonymous:
        raise Forbidden("sign in first")
    if not principal.can(TokenScope.WRITE):
        raise Forbidden(policy.missing_scope(principal, TokenScope.WRITE))
    if principal.role not in STAFF:
        raise Forbidden("only admins and analysts change cases")
    own = case is not None and case.origin_org_id == principal.org_id
    widening = (
        tlp is not None and case is not None and TLP.parse(tlp).rank < TLP.parse(case.tlp).rank
    )
    if widening and not own:
        raise Forbidden("only the organisation that opened a case makes its TLP less strict")
    if principal.is_centre:
        # As for events: the centre passes on what TLP lets it, but AMBER+STRICT and RED leave
        # the audience to the source.
        if share and case is not None and not own and case.tlp in (TLP.AMBER_STRICT, TLP.RED):
            raise Forbidden(
                f"who receives a TLP:{case.tlp.upper()} case is for the organisation that "
                "opened it to decide"
            )
        return
    if principal.org_kind != OrgKind.NATIONAL_BODY:
        raise Forbidden("only the centre and national bodies work on cases")
    if case is None:
        return
    taking_part = principal.org_id in (parties or Parties()).org_ids
    if not (own or taking_part):
        raise Forbidden(f"your organisation does not take part in case {case.id}")
    if share and not own:
        raise Forbidden(
            "only the centre and the originating organisation change who receives a case"
        )


def can_write(
    principal: Principal, case: Case | None, parties: Parties | None = None, *, share: bool = False
) -> bool:
    """For the UI: whether to offer a form (the service checks again on submit)."""
    try:
        check_case_write(principal, case, parties, share=share)
    except Forbidden:
        return False
    return True


# --- helpers -------------------------------------------------------------------------------


def _invalid(message: str, field_name: str) -> InvalidInput:
    return InvalidInput(message, FaultLocation(field=field_name))


def choice(enum_type: Any, value: str, field_name: str) -> Any:
    try:
        return enum_type(value.strip().lower())
    except ValueError:
        allowed = ", ".join(v.value for v in enum_type)
        raise _invalid(
            f"unknown {field_name} {value!r}; use one of {allowed}", field_name
        ) from None


def _tlp(value: str, field_name: str = "tlp") -> TLP:
    try:
        return TLP.parse(value)
    except ValueError as exc:
        raise _invalid(str(exc), field_name) from None


def _title(value: str) -> str:
    title = " ".join(value.split())
    if not title:
        raise _invalid("a case needs a title", "title")
    if len(title) > MAX_TITLE:
        raise _invalid(f"a title has at most {MAX_TITLE} characters", "title")
    return title


def _long_text(value: str, field_name: str, *, required: bool = False) -> str:
    text = value.strip()
    if required and not text:
        raise _invalid(f"the {field_name} is empty", field_name)
    if len(text) > MAX_TEXT:
        raise _invalid(f"the {field_name} has more than {MAX_TEXT} characters", field_name)
    return text


def technique_id(value: str, field_name: str = "technique_id") -> str:
    """A MITRE ATT&CK technique id, upper-cased: T1566 or T1566.001. A fault names
    `field_name`, the field that gave it."""
    cleaned = value.strip().upper()
    if not TECHNIQUE_RE.match(cleaned):
        raise _invalid(
            f"{value!r} is not an ATT&CK technique id (like T1566 or T1566.001)", field_name
        )
    attack = attack_catalogue()
    if cleaned not in attack.techniques:
        raise _invalid(f"{cleaned} is not a technique of ATT&CK {attack.version}", field_name)
    return cleaned


def _actor(principal: Principal) -> str:
    return principal.username or f"user:{principal.user_id}"


# The labels narrower than the case may later be: an audit record of what was done under one
# keeps it (`AUDIT_LABEL` in its detail), and is shown as the timeline entry is.
NARROW_LABELS = frozenset({TLP.RED.value, TLP.AMBER_STRICT.value})
AUDIT_LABEL = "label"


def _append(
    session: Session,
    principal: Principal,
    case: Case,
    kind: TimelineKind,
    action: str,
    detail: dict[str, Any],
    text: str = "",
) -> TimelineEntry:
    """One write, recorded twice: on the case's timeline (what participants read) and in the
    audit log (what the operators verify). The audit record carries ids and field names only:
    admins who read the audit log may not be recipients of the case's content."""
    now = utcnow()
    entry = TimelineEntry(
        case_id=case.id,
        at=now,
        actor_user_id=principal.user_id,
        actor=_actor(principal),
        kind=kind.value,
        text=text,
        detail=json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str),
        tlp=case.tlp,
    )
    session.add(entry)
    # An entry naming events or indicators is shown only to the readers who see one of them;
    # the case's time and version, which every reader sees, do not move for it (nor does a
    # form's concurrency check need them to: links change none of the case's fields).
    if "events" not in detail and "indicators" not in detail:
        case.updated_at = now
        case.version = (case.version or 1) + 1
    audit_detail = {k: v for k, v in detail.items() if k not in ("title", "summary")}
    if case.tlp in NARROW_LABELS:
        # what was done under a narrow label stays under it in the log too, as on the
        # timeline, when the case is widened later
        audit_detail[AUDIT_LABEL] = case.tlp
    audit.record(session, principal, action, KIND, case.id, audit_detail)
    return entry


def _orgs_by_slug(
    session: Session, principal: Principal, slugs: Iterable[str], field_name: str
) -> list[Organization]:
    wanted = [s.strip() for s in slugs if s and s.strip()]
    # among the organisations the principal sees: one it does not is as unknown as a typo
    visible = select(Organization).where(
        Organization.slug.in_(wanted), policy.org_filter(principal)
    )
    found = {o.slug: o for o in session.scalars(visible)}
    result = []
    for slug in dict.fromkeys(wanted):
        org = found.get(slug)
        if org is None:
            raise _invalid(f"no organisation {slug!r}", field_name)
        if org.kind not in PARTICIPANT_KINDS:
            raise _invalid(
                f"{slug} is not a national body: cases are worked on by member states", field_name
            )
        result.append(org)
    return result


def _party_user(session: Session, username: str, field_name: str, parties: Any) -> User:
    """A user of the centre or of a participating organisation. Anyone else answers as an
    unknown name does: a case's participants learn nothing of other states' accounts."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    org = session.get(Organization, user.org_id) if user is not None else None
    if (
        user is None
        or org is None
        or (org.kind != OrgKind.CENTRE and org.id not in parties.org_ids)
    ):
        raise _invalid(
            f"no user {username!r} in the centre or a participating organisation", field_name
        )
    return user


def _can_see(session: Session, user: User, case: Case, tlp: str | None = None) -> bool:
    """Whether `user` sees the case, under its TLP or under `tlp` (a change being made)."""
    from concord.access.service import principal_for

    org = session.get(Organization, user.org_id)
    assert org is not None  # foreign key
    level = literal(tlp) if tlp is not None else None
    seen = session.scalar(
        select(Case.id).where(
            Case.id == case.id, policy.tlp_filter(principal_for(user, org), Case, level)
        )
    )
    return seen is not None


def visible_indicator(principal: Principal) -> ColumnElement[bool]:
    """Indicators carry no label of their own: one is visible through a visible event."""
    return exists(
        select(EventObservable.event_id)
        .join(Event, Event.id == EventObservable.event_id)
        .where(EventObservable.indicator_id == Indicator.id, policy.tlp_filter(principal, Event))
    )


def _events_for_link(session: Session, principal: Principal, ids: Sequence[int]) -> list[Event]:
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if len(wanted) > MAX_LINKS:
        raise _invalid(f"link at most {MAX_LINKS} events at once", "event_ids")
    if not wanted:
        return []
    events = list(
        session.scalars(
            select(Event).where(Event.id.in_(wanted), policy.tlp_filter(principal, Event))
        )
    )
    missing = sorted(set(wanted) - {e.id for e in events})
    if missing:
        # The same answer for an event that does not exist and one the principal may not see.
        raise _invalid(f"no events {', '.join(map(str, missing))}", "event_ids")
    return events


def _indicators_for_link(
    session: Session, principal: Principal, values: Sequence[str]
) -> list[Indicator]:
    wanted = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    if len(wanted) > MAX_LINKS:
        raise _invalid(f"link at most {MAX_LINKS} indicators at once", "indicators")
    if not wanted:
        return []
    forms = {v: search_forms(v) for v in wanted}
    found = list(
        session.scalars(
            select(Indicator)
            .where(Indicator.value.in_(set().union(*forms.values())), visible_indicator(principal))
            .order_by(Indicator.id)
        )
    )
    known = {i.value for i in found}
    missing = [v for v in wanted if not forms[v] & known]
    if missing:
        raise _invalid(f"no indicators {', '.join(missing)}", "indicators")
    return found


# --- reads ---------------------------------------------------------------------------------


def get_case(session: Session, principal: Principal, case_id: int, *, lock: bool = False) -> Case:
    stmt = select(Case).where(Case.id == case_id, policy.tlp_filter(principal, Case))
    if lock:
        # Serialise concurrent writers of one case on PostgreSQL (SQLite takes the write lock
        # at BEGIN anyway), so two status changes cannot both pass the workflow check.
        stmt = stmt.with_for_update(of=Case)
    case = session.scalar(stmt)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


@dataclass
class CaseFilters:
    status: str | None = None
    severity: str | None = None
    country: str | None = None
    assignee: str | None = None
    q: str | None = None


def _filtered(principal: Principal, filters: CaseFilters) -> Any:
    stmt = select(Case).where(policy.tlp_filter(principal, Case))
    if filters.status:
        stmt = stmt.where(Case.status == choice(CaseStatus, filters.status, "status").value)
    if filters.severity:
        stmt = stmt.where(Case.severity == choice(Severity, filters.severity, "severity").value)
    if filters.country:
        try:  # a code no state has is a mistake to tell, not an empty board to show
            country = validate.country(filters.country)
        except ValueError as exc:
            raise _invalid(str(exc), "country") from None
        participating = (
            select(CaseParticipant.case_id)
            .join(Organization, Organization.id == CaseParticipant.org_id)
            .where(Organization.country == country, Organization.kind.in_(STATE_KINDS))
        )
        origin = select(Organization.id).where(
            Organization.country == country, Organization.kind.in_(STATE_KINDS)
        )
        stmt = stmt.where(or_(Case.id.in_(participating), Case.origin_org_id.in_(origin)))
    if filters.assignee:
        name = filters.assignee.strip().lower()
        stmt = stmt.where(Case.assignee_user_id.in_(select(User.id).where(User.username == name)))
    if filters.q:
        like = contains_pattern(filters.q)
        stmt = stmt.where(
            or_(
                func.lower(Case.title).like(like, escape="\\"),
                func.lower(Case.summary).like(like, escape="\\"),
            )
        )
    return stmt


def list_cases(
    session: Session,
    principal: Principal,
    filters: CaseFilters | None = None,
    *,
    after_id: int = 0,
    limit: int = 100,
) -> list[Case]:
    """Cases the principal may see, oldest first, for keyset pagination by id."""
    stmt = _filtered(principal, filters or CaseFilters()).where(Case.id > after_id)
    return list(session.scalars(stmt.order_by(Case.id).limit(limit)))


@dataclass
class Board:
    columns: dict[str, list[Case]]
    counts: dict[str, int]


def board(
    session: Session, principal: Principal, filters: CaseFilters, per_column: int = 50
) -> Board:
    """Cases by status, most recently changed first in each column."""
    columns: dict[str, list[Case]] = {}
    counts: dict[str, int] = {}
    statuses = [choice(CaseStatus, filters.status, "status")] if filters.status else CaseStatus
    base = replace(filters, status=None)
    for status in statuses:
        stmt = _filtered(principal, base).where(Case.status == status.value)
        columns[status.value] = list(
            session.scalars(stmt.order_by(Case.updated_at.desc(), Case.id.desc()).limit(per_column))
        )
        counts[status.value] = (
            session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        )
    return Board(columns, counts)


def cases_linking(
    session: Session,
    principal: Principal,
    event_ids: Sequence[int],
    indicator_ids: Sequence[int],
    limit: int = 50,
) -> dict[Case, tuple[list[int], list[int]]]:
    """The cases `principal` may see that link any of these events or indicators (a
    campaign's), each with the ids of those events and indicators it links: a case joins
    a campaign through what it is about."""
    if not event_ids and not indicator_ids:
        return {}
    linked: dict[int, tuple[set[int], set[int]]] = {}
    for side, case_column, column, ids in (
        (0, CaseEvent.case_id, CaseEvent.event_id, event_ids),
        (1, CaseIndicator.case_id, CaseIndicator.indicator_id, indicator_ids),
    ):
        for chunk in chunks(ids):
            for case_id, linked_id in session.execute(
                select(case_column, column).where(column.in_(chunk))
            ):
                linked.setdefault(case_id, (set(), set()))[side].add(linked_id)
    if not linked:
        return {}
    visible = session.scalars(
        _filtered(principal, CaseFilters())
        .where(Case.id.in_(list(linked)))
        .order_by(Case.updated_at.desc(), Case.id.desc())
        .limit(limit)
    )
    return {case: (sorted(linked[case.id][0]), sorted(linked[case.id][1])) for case in visible}


def usernames(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def org_slugs(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = session.execute(
        select(Organization.id, Organization.slug).where(Organization.id.in_(wanted))
    )
    return dict(rows.all())


@dataclass(frozen=True)
class TimelineItem:
    """A timeline entry as one reader sees it: `detail` names only the linked events and
    indicators that reader may see (the stored entry names all of them)."""

    entry: TimelineEntry
    detail: dict[str, Any]


def _timeline_for(
    session: Session, principal: Principal, entries: Iterable[TimelineEntry]
) -> list[TimelineItem]:
    """The timeline with the ids of hidden events and indicators left out: a case never
    widens what it links to, and an id alone tells that a hidden report exists. Those
    linked once and unlinked since are named as the reader may see them too."""
    details = [(entry, json.loads(entry.detail or "{}")) for entry in entries]
    named_events: set[int] = set()
    named_indicators: set[int] = set()
    for _entry, detail in details:
        if isinstance(detail.get("events"), list):
            named_events.update(i for i in detail["events"] if isinstance(i, int))
        if isinstance(detail.get("indicators"), list):
            named_indicators.update(i for i in detail["indicators"] if isinstance(i, int))
    event_ids = _visible_ids(session, Event.id, named_events, policy.tlp_filter(principal, Event))
    indicator_ids = _visible_ids(
        session, Indicator.id, named_indicators, visible_indicator(principal)
    )
    values = indicator_values(session, sorted(indicator_ids))
    items = []
    for entry, detail in details:
        named = False
        if isinstance(detail.get("events"), list):
            named = True
            detail["events"] = [i for i in detail["events"] if i in event_ids]
        if isinstance(detail.get("indicators"), list):
            named = True
            detail["indicators"] = [i for i in detail["indicators"] if i in indicator_ids]
            # by value, linked still or not: "Linked indicators: 1" read as an indicator "1"
            detail["indicator_values"] = [values[i] for i in detail["indicators"] if i in values]
        if named and not detail.get("events") and not detail.get("indicators"):
            continue  # about hidden links only: an empty line, at best
        items.append(TimelineItem(entry, detail))
    return items


def narrower(entry: Any, case: Any) -> Any:
    """SQL: the narrower of an entry's label (None: written before entries kept one) and the
    case's."""
    rank = {t.value: t.rank for t in TLP}
    entry_rank = sql_case(rank, value=entry, else_=-1)
    case_rank = sql_case(rank, value=case, else_=-1)
    return sql_case((entry_rank > case_rank, entry), else_=case)


def _visible_ids(
    session: Session, column: Any, ids: set[int], visible: ColumnElement[bool]
) -> set[int]:
    found: set[int] = set()
    for chunk in chunks(sorted(ids)):
        found.update(session.scalars(select(column).where(column.in_(chunk), visible)))
    return found


@dataclass
class CaseDetail:
    case: Case
    origin_org: Organization | None
    assignee: str | None
    participants: list[Organization]
    named_users: list[str]
    techniques: list[CaseTechnique]
    events: list[Event]
    indicators: list[Indicator]
    timeline: list[TimelineItem]
    parties: Parties = field(default_factory=Parties)


def case_detail(session: Session, principal: Principal, case_id: int) -> CaseDetail:
    """A case with everything attached to it. Linked events are shown only where the reader
    may see them under their own TLP labels: a case never widens what it links to. Nor does
    it count those left out: a count tells that a hidden report exists, as an id would."""
    case = get_case(session, principal, case_id)
    parties = parties_of(session, case)
    participants = list(
        session.scalars(
            select(Organization)
            .join(CaseParticipant, CaseParticipant.org_id == Organization.id)
            .where(CaseParticipant.case_id == case.id)
            .order_by(Organization.country, Organization.slug)
        )
    )
    linked_events = select(CaseEvent.event_id).where(CaseEvent.case_id == case.id)
    events = list(
        session.scalars(
            select(Event)
            .where(Event.id.in_(linked_events), policy.tlp_filter(principal, Event))
            .order_by(Event.time.desc(), Event.id)
        )
    )
    linked_indicators = select(CaseIndicator.indicator_id).where(CaseIndicator.case_id == case.id)
    indicators = list(
        session.scalars(
            select(Indicator)
            .where(Indicator.id.in_(linked_indicators), visible_indicator(principal))
            .order_by(Indicator.kind, Indicator.value)
        )
    )
    names = usernames(session, [case.assignee_user_id, *parties.user_ids])
    return CaseDetail(
        case=case,
        origin_org=session.get(Organization, case.origin_org_id) if case.origin_org_id else None,
        assignee=names.get(case.assignee_user_id) if case.assignee_user_id else None,
        participants=participants,
        named_users=sorted(names[u] for u in parties.user_ids if u in names),
        techniques=list(
            session.scalars(
                select(CaseTechnique)
                .where(CaseTechnique.case_id == case.id)
                .order_by(CaseTechnique.technique_id)
            )
        ),
        events=events,
        indicators=indicators,
        timeline=_timeline_for(
            session,
            principal,
            session.scalars(
                select(TimelineEntry)
                .join(Case, Case.id == TimelineEntry.case_id)
                .where(
                    TimelineEntry.case_id == case.id,
                    # each entry under the label it was written under, where that is
                    # narrower than the case's now (one named on a RED case since reads
                    # what was said before)
                    policy.tlp_filter(principal, Case, narrower(TimelineEntry.tlp, Case.tlp)),
                )
                .order_by(TimelineEntry.id)
            ),
        ),
        parties=parties,
    )


def assignable_users(session: Session, case: Case, parties: Parties) -> list[tuple[User, str]]:
    """Active admins and analysts of the participating organisations, and of the centre
    unless it takes no part in an AMBER+STRICT case, which it does not see (`_assign`
    refuses them; assigning a RED case names the assignee)."""
    centre = select(Organization.id).where(Organization.kind == OrgKind.CENTRE.value)
    if case.tlp == TLP.AMBER_STRICT:
        centre = centre.where(false())
    stmt = (
        select(User, Organization.slug)
        .join(Organization, Organization.id == User.org_id)
        .where(
            User.active.is_(True),
            User.role.in_([r.value for r in STAFF]),
            or_(User.org_id.in_(centre), User.org_id.in_(parties.org_ids)),
        )
        .order_by(Organization.slug, User.username)
    )
    return [(u, s) for u, s in session.execute(stmt)]


def participant_choices(
    session: Session, principal: Principal, parties: Parties, case: Case | None = None
) -> list[Organization]:
    """The organisations a case may add: national bodies, and the centre where it would not
    see the case otherwise (AMBER+STRICT, or a case not opened yet, whose label is still to
    be chosen; a RED case names its users instead); never the caller's own organisation,
    which takes part already."""
    kinds = [OrgKind.NATIONAL_BODY.value]
    if case is None or case.tlp == TLP.AMBER_STRICT:
        kinds.append(OrgKind.CENTRE.value)
    stmt = (
        select(Organization)
        .where(
            Organization.kind.in_(kinds),
            policy.org_filter(principal),
            Organization.id.not_in(parties.org_ids),
            Organization.id != principal.org_id,
        )
        .order_by(Organization.country, Organization.slug)
    )
    return list(session.scalars(stmt))


# --- writes --------------------------------------------------------------------------------


@dataclass
class CaseInput:
    title: str
    summary: str = ""
    severity: str = Severity.MEDIUM.value
    tlp: str | None = None
    event_ids: Sequence[int] = ()
    indicators: Sequence[str] = ()
    participants: Sequence[str] = ()
    techniques: Sequence[str] = ()


def create_case(session: Session, principal: Principal, data: CaseInput) -> Case:
    """Open a case from scratch, or from events and indicator values the creator can see.

    Without an explicit TLP the case takes the narrowest label of its events, and never a
    wider one than AMBER, so that opening a case does not widen what it was made from."""
    check_case_write(principal, None)
    faults = Faults()  # every field's fault told at once, not one per attempt
    title = faults.check(lambda: _title(data.title), "")
    summary = faults.check(lambda: _long_text(data.summary or "", "summary"), "")
    severity = faults.check(
        lambda: choice(Severity, data.severity or Severity.MEDIUM.value, "severity"),
        Severity.MEDIUM,
    )
    techniques = faults.check(
        lambda: [technique_id(t, "techniques") for t in data.techniques if t and t.strip()], []
    )
    events = faults.check(lambda: _events_for_link(session, principal, data.event_ids), [])
    indicators = faults.check(lambda: _indicators_for_link(session, principal, data.indicators), [])
    participants = faults.check(
        lambda: _orgs_by_slug(session, principal, data.participants, "participants"), []
    )
    given_tlp = faults.check(lambda: _tlp(data.tlp) if data.tlp else None, None)
    faults.raise_any()
    if given_tlp is not None:
        tlp = given_tlp
    else:
        tlp = max([TLP.AMBER, *(TLP.parse(e.tlp) for e in events)], key=lambda t: t.rank)
    now = utcnow()
    case = Case(
        title=title,
        summary=summary,
        status=CaseStatus.NEW.value,
        severity=severity.value,
        tlp=tlp.value,
        origin_org_id=principal.org_id,
        origin_user_id=principal.user_id,
        share_constituents=False,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    _append(
        session,
        principal,
        case,
        TimelineKind.CREATE,
        "create",
        {"tlp": case.tlp, "severity": case.severity, "title": title},
    )
    own = session.get(Organization, principal.org_id) if principal.org_id else None
    if own is not None and own.kind == OrgKind.NATIONAL_BODY:
        # The reporting state takes part in its own case from the start.
        participants = [own, *[o for o in participants if o.id != own.id]]
    for org in participants:
        _add_participant(session, principal, case, org)
    for tech in dict.fromkeys(techniques):
        _add_technique(session, principal, case, tech, "")
    _link(session, principal, case, events, indicators)
    return case


def _load_for_write(
    session: Session, principal: Principal, case_id: int, *, share: bool = False
) -> tuple[Case, Parties]:
    case = get_case(session, principal, case_id, lock=True)
    parties = parties_of(session, case)
    check_case_write(principal, case, parties, share=share)
    return case, parties


def _refuse_if_closed(case: Case) -> None:
    if case.status == CaseStatus.CLOSED:
        raise Conflict(f"case {case.id} is closed; reopen it first")


ENDED = (CaseStatus.RESOLVED, CaseStatus.CLOSED)


def _resolution(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return str(choice(Resolution, value, "resolution").value)


def _set_status(
    session: Session, principal: Principal, case: Case, value: str, resolution: str | None = None
) -> bool:
    new = choice(CaseStatus, value, "status")
    old = CaseStatus(case.status)
    ending = _resolution(resolution)
    if new == old:
        return _set_resolution(session, principal, case, ending) if ending else False
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[old]))
        raise Conflict(f"a case cannot go from {old.value} to {new.value}; next: {allowed}")
    if ending and new not in ENDED:
        raise _invalid("a resolution is given when a case is resolved or closed", "resolution")
    now = utcnow()
    case.status = new.value
    detail: dict[str, Any] = {"from": old.value, "to": new.value}
    if new == CaseStatus.RESOLVED:
        case.resolved_at = now
    elif new == CaseStatus.CLOSED:
        case.closed_at = now
    elif old in ENDED:
        # Reopened: the case is no longer resolved; the timeline keeps the earlier stamps.
        case.resolved_at = None
        case.closed_at = None
        case.resolution = None
    if ending:
        case.resolution = ending
    if new in ENDED and case.resolution:
        detail["resolution"] = case.resolution
    _append(session, principal, case, TimelineKind.STATUS, "status", detail)
    return True


def _set_resolution(
    session: Session, principal: Principal, case: Case, resolution: str | None
) -> bool:
    """Say (or correct) how a resolved case ended; a closed one is reopened first."""
    if resolution == case.resolution:
        return False
    if CaseStatus(case.status) != CaseStatus.RESOLVED:
        _refuse_if_closed(case)
        raise _invalid("a resolution is given when a case is resolved or closed", "resolution")
    detail = {"fields": ["resolution"], "resolution": {"from": case.resolution, "to": resolution}}
    case.resolution = resolution
    _append(session, principal, case, TimelineKind.UPDATE, "update", detail)
    return True


def _set_fields(
    session: Session,
    principal: Principal,
    case: Case,
    parties: Parties,
    changes: dict[str, Any],
) -> bool:
    wanted: dict[str, Any] = {}
    if changes.get("title") is not None:
        wanted["title"] = _title(changes["title"])
    if changes.get("summary") is not None:
        wanted["summary"] = _long_text(changes["summary"], "summary")
    if changes.get("severity") is not None:
        wanted["severity"] = choice(Severity, changes["severity"], "severity").value
    if changes.get("tlp") is not None:
        wanted["tlp"] = _tlp(changes["tlp"]).value
    applied = {k: v for k, v in wanted.items() if getattr(case, k) != v}
    if not applied:
        return False
    _refuse_if_closed(case)
    named = None
    if "tlp" in applied:
        check_case_write(principal, case, parties, share=True, tlp=applied["tlp"])
        named = _keep_the_assignee(session, case, applied["tlp"])
    detail: dict[str, Any] = {"fields": sorted(applied)}
    for key, value in applied.items():
        # Labels are recorded with their old value, the title as its new value; the summary
        # only by name (it can be long, and the case shows the current one).
        if key in LABELS:
            detail[key] = {"from": getattr(case, key), "to": value}
        elif key == "title":
            detail[key] = value
        setattr(case, key, value)
    _append(session, principal, case, TimelineKind.UPDATE, "update", detail)
    if named is not None:
        _append(
            session, principal, case, TimelineKind.PARTICIPANT, "participant-add", {"user": named}
        )
    return True


def _keep_the_assignee(session: Session, case: Case, tlp: str) -> str | None:
    """A narrower label must not cut the assignee off the case they work on: under TLP:RED
    they are named (the username returned, for the timeline); under another label that
    would hide the case from them, the change is refused."""
    if case.assignee_user_id is None:
        return None
    assignee = session.get(User, case.assignee_user_id)
    if assignee is None or _can_see(session, assignee, case, tlp):
        return None
    if tlp == TLP.RED.value:
        session.add(Share(object_kind=KIND, object_id=case.id, user_id=assignee.id))
        return assignee.username
    raise _invalid(
        f"{assignee.username}, the assignee, could not see the case under TLP:{tlp.upper()}: "
        "add their organisation as a participant or reassign the case first",
        "tlp",
    )


def _assign(
    session: Session, principal: Principal, case: Case, parties: Parties, username: str | None
) -> bool:
    old = case.assignee_user_id
    names = usernames(session, [old])
    if not username:
        if old is None:
            return False
        _refuse_if_closed(case)
        case.assignee_user_id = None
        _append(
            session,
            principal,
            case,
            TimelineKind.ASSIGN,
            "assign",
            {"from": names.get(old), "to": None},
        )
        return True
    user = _party_user(session, username, "assignee", parties)
    if user.id == old:
        return False
    _refuse_if_closed(case)
    if not user.active or user.role not in [r.value for r in STAFF]:
        raise _invalid(f"{user.username} is not an active admin or analyst", "assignee")
    if not _can_see(session, user, case):
        if case.tlp != TLP.RED:
            raise _invalid(
                f"{user.username} cannot see this case under its TLP label; "
                "add their organisation as a participant first",
                "assignee",
            )
        # TLP:RED is for named users: assigning names the assignee, which widens the audience.
        check_case_write(principal, case, parties, share=True)
        session.add(Share(object_kind=KIND, object_id=case.id, user_id=user.id))
    case.assignee_user_id = user.id
    _append(
        session,
        principal,
        case,
        TimelineKind.ASSIGN,
        "assign",
        {"from": names.get(old) if old else None, "to": user.username},
    )
    return True


def _changed_meanwhile(key: str, now: str) -> str:
    """One message per field, so that each reads whole in every language (the page shows
    the current title and summary; a label's value is itself a message, translated in turn)."""
    after = "look at the case again and make your change there"
    if key == "severity":
        return f"the severity was changed meanwhile (it is now {now}): {after}"
    if key == "tlp":
        return f"the TLP was changed meanwhile (it is now TLP:{now.upper()}): {after}"
    return f"the {key} was changed meanwhile: {after}"


def update_case(
    session: Session,
    principal: Principal,
    case_id: int,
    changes: dict[str, Any],
    expected: dict[str, str] | None = None,
    *,
    versions: frozenset[int] | None = None,
) -> Case:
    """Change several things at once (the API's PATCH); each change is its own timeline
    entry. A reopening status moves first and a closing one last, so one request may reopen
    a case and change it, or make last changes and close it. `expected` holds what a form
    showed of the fields it changes: one changed meanwhile by someone else is a Conflict,
    not overwritten unseen (a TLP a colleague just narrowed, say). `versions` are those an
    API client read (its `If-Match`): a case changed since fails the precondition."""
    case, parties = _load_for_write(session, principal, case_id)
    if versions is not None and case.version not in versions:
        raise PreconditionFailed(
            f"case {case.id} changed since you read it (it is now version {case.version}): "
            "read it again and make your change there"
        )
    for key, shown in (expected or {}).items():
        if key in changes and str(getattr(case, key) or "") != shown:
            raise Conflict(_changed_meanwhile(key, str(getattr(case, key) or "")))
    status = changes.get("status")
    resolution = changes.get("resolution")
    if "resolution" in changes and resolution is None:
        resolution = ""  # null clears it, as an empty text does
    closing = status is not None and status.strip().lower() == CaseStatus.CLOSED
    if status is not None and not closing:
        _set_status(session, principal, case, status, resolution)
    elif status is None and resolution is not None:
        _set_resolution(session, principal, case, _resolution(resolution))
    _set_fields(session, principal, case, parties, changes)
    if "assignee" in changes:
        _assign(session, principal, case, parties, changes["assignee"])
    if closing:
        _set_status(session, principal, case, status, resolution)
    return case


def set_status(
    session: Session,
    principal: Principal,
    case_id: int,
    status: str,
    resolution: str | None = None,
) -> Case:
    case, _parties = _load_for_write(session, principal, case_id)
    _set_status(session, principal, case, status, resolution)
    return case


def set_severity(session: Session, principal: Principal, case_id: int, severity: str) -> Case:
    case, parties = _load_for_write(session, principal, case_id)
    _set_fields(session, principal, case, parties, {"severity": severity})
    return case


def assign(
    session: Session,
    principal: Principal,
    case_id: int,
    username: str | None,
    shown: str | None = None,
) -> Case:
    """Assign the case to `username` (None: to nobody). `shown` is the assignee a form
    showed ("" for nobody): a colleague's assignment made meanwhile is a Conflict, not
    overwritten unseen."""
    case, parties = _load_for_write(session, principal, case_id)
    if shown is not None:
        now = usernames(session, [case.assignee_user_id]).get(case.assignee_user_id, "")
        if now != shown:
            raise Conflict(_changed_meanwhile("assignee", now))
    _assign(session, principal, case, parties, username)
    return case


def add_comment(session: Session, principal: Principal, case_id: int, text: str) -> TimelineEntry:
    """Comments are welcome on a closed case too: the history stays open to remarks."""
    case, _parties = _load_for_write(session, principal, case_id)
    body = _long_text(text, "text", required=True)
    return _append(
        session, principal, case, TimelineKind.COMMENT, "comment", {"length": len(body)}, body
    )


def _add_participant(session: Session, principal: Principal, case: Case, org: Organization) -> bool:
    present = session.get(CaseParticipant, (case.id, org.id))
    if present is not None:
        return False
    session.add(CaseParticipant(case_id=case.id, org_id=org.id, added_by_user_id=principal.user_id))
    has_share = session.scalar(
        select(Share.id).where(
            Share.object_kind == KIND, Share.object_id == case.id, Share.org_id == org.id
        )
    )
    if has_share is None:
        # The share is what lets the participant see an AMBER or AMBER+STRICT case.
        session.add(Share(object_kind=KIND, object_id=case.id, org_id=org.id))
    session.flush()
    _append(
        session,
        principal,
        case,
        TimelineKind.PARTICIPANT,
        "participant-add",
        {"org": org.slug, "country": org.country},
    )
    return True


def add_participant(session: Session, principal: Principal, case_id: int, org_slug: str) -> Case:
    case, _parties = _load_for_write(session, principal, case_id, share=True)
    _refuse_if_closed(case)
    if not org_slug.strip():
        raise _invalid("say which organisation takes part", "org")
    (org,) = _orgs_by_slug(session, principal, [org_slug], "org")
    _add_participant(session, principal, case, org)
    return case


def remove_participant(session: Session, principal: Principal, case_id: int, org_slug: str) -> Case:
    """Withdraw a participating organisation: the centre and the originator may withdraw any,
    a participating national body itself (it no longer works on the case)."""
    org = session.scalar(select(Organization).where(Organization.slug == org_slug.strip()))
    leaving = org is not None and org.id == principal.org_id
    case, _parties = _load_for_write(session, principal, case_id, share=not leaving)
    _refuse_if_closed(case)
    if org is None or session.get(CaseParticipant, (case.id, org.id)) is None:
        raise NotFound(f"{org_slug} does not take part in case {case.id}")
    if org.id == case.origin_org_id:
        raise Conflict("the originating organisation always takes part in its case")
    members = select(User.id).where(User.org_id == org.id)
    if case.assignee_user_id is not None and session.scalar(
        select(User.id).where(User.id == case.assignee_user_id, User.org_id == org.id)
    ):
        raise Conflict(f"the case is assigned to a user of {org.slug}; reassign it first")
    session.execute(
        delete(CaseParticipant).where(
            CaseParticipant.case_id == case.id, CaseParticipant.org_id == org.id
        )
    )
    # Withdraw what joining gave: the organisation's share and its users' names (TLP:RED).
    session.execute(
        delete(Share).where(
            Share.object_kind == KIND,
            Share.object_id == case.id,
            or_(Share.org_id == org.id, Share.user_id.in_(members)),
        )
    )
    _append(
        session,
        principal,
        case,
        TimelineKind.PARTICIPANT,
        "participant-remove",
        {"org": org.slug, "country": org.country, "removed": True},
    )
    return case


def add_named_user(session: Session, principal: Principal, case_id: int, username: str) -> Case:
    """Name a recipient (the only way to see a TLP:RED case): a user of the centre or of a
    participating organisation."""
    case, parties = _load_for_write(session, principal, case_id, share=True)
    _refuse_if_closed(case)
    user = _party_user(session, username, "user", parties)
    if user.id in parties.user_ids:
        return case
    session.add(Share(object_kind=KIND, object_id=case.id, user_id=user.id))
    session.flush()
    _append(
        session,
        principal,
        case,
        TimelineKind.PARTICIPANT,
        "participant-add",
        {"user": user.username},
    )
    return case


def remove_named_user(session: Session, principal: Principal, case_id: int, username: str) -> Case:
    case, parties = _load_for_write(session, principal, case_id, share=True)
    _refuse_if_closed(case)
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or user.id not in parties.user_ids:  # alike, whether the name exists
        raise NotFound(f"{username.strip().lower()} is not named on case {case.id}")
    if user.id == case.assignee_user_id and case.tlp == TLP.RED:
        raise Conflict(f"the case is assigned to {user.username}; reassign it first")
    session.execute(
        delete(Share).where(
            Share.object_kind == KIND, Share.object_id == case.id, Share.user_id == user.id
        )
    )
    _append(
        session,
        principal,
        case,
        TimelineKind.PARTICIPANT,
        "participant-remove",
        {"user": user.username, "removed": True},
    )
    return case


def participant_slugs(session: Session, case_ids: Iterable[int]) -> dict[int, list[str]]:
    """Participating organisations of many cases at once, for lists and the board."""
    ids = list(case_ids)
    result: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = session.execute(
        select(CaseParticipant.case_id, Organization.slug)
        .join(Organization, Organization.id == CaseParticipant.org_id)
        .where(CaseParticipant.case_id.in_(ids))
        .order_by(Organization.slug)
    )
    for case_id, slug in rows:
        result[case_id].append(slug)
    return result


def _add_technique(
    session: Session, principal: Principal, case: Case, tech: str, name: str
) -> bool:
    if session.get(CaseTechnique, (case.id, tech)) is not None:
        return False
    name = attack_catalogue().techniques.get(tech, (name,))[0]
    session.add(CaseTechnique(case_id=case.id, technique_id=tech, name=name))
    session.flush()
    detail = {"technique": tech, **({"name": name} if name else {})}
    _append(session, principal, case, TimelineKind.TECHNIQUE, "technique-add", detail)
    return True


def add_technique(
    session: Session, principal: Principal, case_id: int, technique: str, name: str = ""
) -> Case:
    case, _parties = _load_for_write(session, principal, case_id)
    _refuse_if_closed(case)
    tech = technique_id(technique)
    # The name is ATT&CK's, so that a technique reads the same on every case and in reports;
    # one given must be that name, not a label of the analyst's.
    official = attack_catalogue().techniques[tech][0]
    given = " ".join((name or "").split())
    if given and given.casefold() != official.casefold():
        raise _invalid(
            f"{tech} is named “{official}” in ATT&CK; leave the name out or give that one",
            "name",
        )
    _add_technique(session, principal, case, tech, official)
    return case


def _link(
    session: Session,
    principal: Principal,
    case: Case,
    events: Sequence[Event],
    indicators: Sequence[Indicator],
) -> bool:
    have_events = set(
        session.scalars(select(CaseEvent.event_id).where(CaseEvent.case_id == case.id))
    )
    have_indicators = set(
        session.scalars(select(CaseIndicator.indicator_id).where(CaseIndicator.case_id == case.id))
    )
    new_events = sorted({e.id for e in events} - have_events)
    new_indicators = sorted({i.id for i in indicators} - have_indicators)
    if not new_events and not new_indicators:
        return False
    session.add_all(CaseEvent(case_id=case.id, event_id=i) for i in new_events)
    session.add_all(CaseIndicator(case_id=case.id, indicator_id=i) for i in new_indicators)
    session.flush()
    # Ids only: the timeline is read by every participant, who may not see every event.
    _append(
        session,
        principal,
        case,
        TimelineKind.LINK,
        "link",
        {"events": new_events, "indicators": new_indicators},
    )
    return True


def link(
    session: Session,
    principal: Principal,
    case_id: int,
    event_ids: Sequence[int] = (),
    indicators: Sequence[str] = (),
) -> Case:
    case, _parties = _load_for_write(session, principal, case_id)
    _refuse_if_closed(case)
    if not event_ids and not indicators:
        raise _invalid("give event ids or indicator values to link", "event_ids")
    events = _events_for_link(session, principal, event_ids)
    found = _indicators_for_link(session, principal, indicators)
    _link(session, principal, case, events, found)
    return case


def remove_technique(session: Session, principal: Principal, case_id: int, technique: str) -> Case:
    """Take a technique off the case (added by mistake, or ruled out)."""
    case, _parties = _load_for_write(session, principal, case_id)
    _refuse_if_closed(case)
    tech = technique_id(technique)
    row = session.get(CaseTechnique, (case.id, tech))
    if row is None:
        raise NotFound(f"the case has no technique {tech}")
    session.delete(row)
    session.flush()
    detail = {"technique": tech, "removed": True}
    _append(session, principal, case, TimelineKind.TECHNIQUE, "technique-remove", detail)
    return case


def unlink(
    session: Session,
    principal: Principal,
    case_id: int,
    event_ids: Sequence[int] = (),
    indicators: Sequence[str] = (),
) -> Case:
    """Take events and indicators the principal can see off the case (linked by mistake):
    the case then leaves the campaign they joined it to."""
    case, _parties = _load_for_write(session, principal, case_id)
    _refuse_if_closed(case)
    if not event_ids and not indicators:
        raise _invalid("give event ids or indicator values to unlink", "event_ids")
    event_set = {e.id for e in _events_for_link(session, principal, event_ids)}
    indicator_set = {i.id for i in _indicators_for_link(session, principal, indicators)}
    gone_events = sorted(
        session.scalars(
            delete(CaseEvent)
            .where(CaseEvent.case_id == case.id, CaseEvent.event_id.in_(event_set))
            .returning(CaseEvent.event_id)
        )
    )
    gone_indicators = sorted(
        session.scalars(
            delete(CaseIndicator)
            .where(CaseIndicator.case_id == case.id, CaseIndicator.indicator_id.in_(indicator_set))
            .returning(CaseIndicator.indicator_id)
        )
    )
    if not gone_events and not gone_indicators:
        raise NotFound("none of these is linked to the case")
    detail = {"events": gone_events, "indicators": gone_indicators, "removed": True}
    _append(session, principal, case, TimelineKind.LINK, "unlink", detail)
    return case


OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.TRIAGE, CaseStatus.IN_PROGRESS)


def open_cases(session: Session, principal: Principal, limit: int = 5) -> list[Case]:
    """The open cases the principal may see, most recently changed first."""
    stmt = _filtered(principal, CaseFilters()).where(
        Case.status.in_([s.value for s in OPEN_STATUSES])
    )
    return list(session.scalars(stmt.order_by(Case.updated_at.desc(), Case.id.desc()).limit(limit)))


def counts(session: Session, principal: Principal) -> dict[str, int]:
    """Cases by status, inside the principal's view (for dashboards)."""
    rows = session.execute(
        select(Case.status, func.count())
        .where(policy.tlp_filter(principal, Case))
        .group_by(Case.status)
    )
    return {status: n for status, n in rows}
