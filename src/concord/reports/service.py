"""Generalized (summary) reports: build them with aggregate SQL, store them, read them back.

Whose view a report shows is decided by its scope and by who asks for it:

* the network report is the centre's view (what the centre organisation may see);
* a state's report holds the events concerning that state (reported by it, or about a
  resource of one of its organisations) that the state's national body may see;
* a state's report asked for by the centre holds only what both the state's national body
  and the requester may see, up to TLP:AMBER (`_View`): nothing is refused on account of
  content the requester may not see, and nothing hidden from either is shown. It says so
  (`seen_by`) and is stored apart from the state's own reports (`stored_scope`).

Every content query goes through `policy.tlp_filter` with the principals of that view, so a
report never holds more than its audience may see; the report is marked with the highest TLP
of what it counts. Every figure comes from GROUP BY queries over the period's rows (one pass
per period for all the breakdowns): the database counts, Python only folds the few groups.

Small counts are suppressed (`CONCORD_REPORT_MIN_COUNT`, default 3) in the by-state and
by-sector breakdowns, in the event counts of indicators and campaigns, and everywhere when a
whole period has fewer events than that; see `suppress_column` and `_cross_state_cell`.
"""

from __future__ import annotations

import bisect
import json
import logging
import statistics
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, func, or_, select, true
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, aliased, defer

from concord.access import policy
from concord.access.model import TLP, Principal, Role, TokenScope, User
from concord.audit import service as audit
from concord.config import env_int
from concord.db import chunks, is_set, reading_beside, session_scope, utcnow
from concord.errors import (
    ConcordError,
    ConfigurationError,
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    NotFound,
)
from concord.events.model import Event, EventObservable, Indicator
from concord.orgs.model import STATE_KINDS, Organization, OrgKind
from concord.orgs.whois import LookupIndex, current_index
from concord.reports import period as periods
from concord.reports import techniques as attack
from concord.reports.model import (
    CampaignRow,
    Campaigns,
    Cases,
    Cell,
    IndicatorRow,
    Period,
    Report,
    ReportRequest,
    Row,
    StoredReport,
)

log = logging.getLogger(__name__)

NETWORK = "network"
FORMATS = ("html", "json", "csv")
MIN_COUNT_ENV = "CONCORD_REPORT_MIN_COUNT"
DEFAULT_MIN_COUNT = 3
TOP_INDICATORS = 10
TOP_CAMPAIGNS = 20
# TLP labels the centre may receive in a state's report: AMBER+STRICT content of a state is
# for that state's national body only (unless shared with the centre, which the state's
# audience cannot tell apart), so the state's own such report stays with the state, and a
# state's report built for the centre leaves that content out.
CENTRE_READS_STATE_TLPS = policy.CENTRE_READS_STATE_TLPS
# Who a report built for someone other than its scope's audience is seen by (only the centre
# may ask for a state's report besides the state), and how it is stored: "KZ@centre".
CENTRE_VIEW = "centre"
_SEEN_BY = "@"


# --- settings and inputs -----------------------------------------------------------------------


def min_count() -> int:
    k = env_int(MIN_COUNT_ENV, DEFAULT_MIN_COUNT, minimum=1)
    return check_min_count(k)


def check_min_count(k: int) -> int:
    """1 turns suppression off; from 3 on, "<k" spans two values or more. "<2" could only
    mean 1 (zeros are shown as 0), so 2 would publish every count it claims to withhold."""
    if k == 2:
        raise ConfigurationError(
            f'{MIN_COUNT_ENV}=2 would show every suppressed count ("<2" can only be 1): '
            f"use 1 to publish every count, or 3 or more to suppress small ones"
        )
    return k


def parse_scope(text: str) -> str:
    cleaned = (text or "").strip()
    if cleaned.lower() == NETWORK:
        return NETWORK
    if len(cleaned) == 2 and cleaned.isalpha() and cleaned.isascii():
        return cleaned.upper()
    raise InvalidInput(
        f"{text!r} is not a scope; use 'network' or a two-letter country code",
        FaultLocation(field="scope"),
    )


def parse_format(text: str) -> str:
    cleaned = (text or "").strip().lower()
    if cleaned not in FORMATS:
        raise InvalidInput(
            f"unknown report format {text!r}; use one of {', '.join(FORMATS)}",
            FaultLocation(field="format"),
        )
    return cleaned


def format_for(fmt: str | None, out: Path | None) -> str:
    """The format asked for; without one, the one the output file's name ends in (x.csv,
    x.htm), else HTML. A name ending in another format's suffix (x.xlsx, x.pdf) is refused:
    writing HTML under it would give a file its own program cannot open. So is a format
    given that the name's own says otherwise (--format csv --out x.json)."""
    suffix = out.suffix.lower().lstrip(".") if out is not None else ""
    if suffix == "htm":
        suffix = "html"
    if fmt:
        chosen = parse_format(fmt)
        if out is not None and suffix in FORMATS and suffix != chosen:
            raise InvalidInput(
                f"cannot write a {chosen.upper()} report as {out.name!r}: the name says "
                f"{suffix.upper()}; name the file .{chosen}, or leave --format out",
                FaultLocation(field="out"),
            )
        return chosen
    if out is not None and suffix and suffix not in FORMATS:
        raise InvalidInput(
            f"cannot write a report as {out.name!r}: name the file .html, .json or .csv, "
            f"or give --format",
            FaultLocation(field="out"),
        )
    return suffix or "html"


def states(session: Session) -> list[str]:
    """Country codes of the member states (those with a national body)."""
    rows = session.scalars(
        select(Organization.country)
        .where(Organization.kind == OrgKind.NATIONAL_BODY.value, Organization.country.is_not(None))
        .distinct()
        .order_by(Organization.country)
    )
    return [c for c in rows if c]


# --- whose view -------------------------------------------------------------------------------


def _org_principal(org: Organization, scope: str) -> Principal:
    # user_id 0 belongs to no account (ids start at 1): the principal is an organisation, so
    # TLP:RED rows, which name individual users, never match it.
    return Principal(
        user_id=0,
        username=f"report:{scope}",
        org_id=org.id,
        org_kind=org.kind,
        org_parent_id=org.parent_id,
        role=Role.ANALYST,
        scopes=frozenset({TokenScope.READ}),
    )


def audience(session: Session, scope: str) -> Principal:
    """The principal whose view a report of `scope` shows."""
    if scope == NETWORK:
        org = session.scalar(
            select(Organization)
            .where(Organization.kind == OrgKind.CENTRE.value)
            .order_by(Organization.id)
        )
        if org is None:
            raise NotFound("the network has no centre organisation to report for")
    else:
        org = session.scalar(
            select(Organization)
            .where(Organization.kind == OrgKind.NATIONAL_BODY.value, Organization.country == scope)
            .order_by(Organization.id)
        )
        if org is None:
            # the value asked for is wrong, as much as a malformed code would be
            raise InvalidInput(
                f"no national body of {scope} to report for", FaultLocation(field="scope")
            )
    return _org_principal(org, scope)


@dataclass(frozen=True)
class _View:
    """Whose eyes a report is built with: the scope's audience and, when the centre asks
    for a state's report, the requester too. Then only what both may see counts, up to
    TLP:AMBER (`policy.CENTRE_READS_STATE_TLPS`), so no part of the answer depends on
    content the requester may not see."""

    audience: Principal
    requester: Principal | None = None

    @property
    def principals(self) -> tuple[Principal, ...]:
        return (self.audience,) if self.requester is None else (self.audience, self.requester)

    @property
    def seen_by(self) -> str | None:
        return None if self.requester is None else CENTRE_VIEW

    @property
    def linker(self) -> Principal:
        """Whose view joins events into campaigns: the reader's (of the events `visible` to
        both, when there are two), so that no link rests on an event the reader may not
        see."""
        return self.requester or self.audience

    def visible(self, model: Any) -> ColumnElement[bool]:
        """Rows of a Sharable `model` every principal of the view may see."""
        parts = [policy.tlp_filter(p, model) for p in self.principals]
        if self.requester is not None:
            parts.append(model.tlp.in_(CENTRE_READS_STATE_TLPS))
        return and_(*parts)

    def orgs(self) -> Any:
        """Ids of the organisations every principal of the view may see (the orgs API's
        rule, `policy.org_filter`): only their sectors are named."""
        return select(Organization.id).where(*(policy.org_filter(p) for p in self.principals))


def view_for(session: Session, principal: Principal | None, scope: str) -> _View:
    """The view a report of `scope` asked for by `principal` is built with: the scope's
    audience's own for the console, the scheduler, the state's national body and the
    network report; the narrower shared one for the centre asking for a state's."""
    who = audience(session, scope)
    if principal is None or scope == NETWORK or _is_body_of(session, principal, scope):
        return _View(who)
    return _View(who, principal)


def stored_scope(scope: str, seen_by: str | None) -> str:
    """The scope column of a stored report. A state's report seen by the centre is kept
    apart ("KZ@centre"): the state's national body reads the reports of its own scope only,
    so it never takes the narrower one for its own full report."""
    return scope if not seen_by else f"{scope}{_SEEN_BY}{seen_by}"


def split_scope(stored: str) -> tuple[str, str | None]:
    """The scope and who it was seen by, from a stored report's scope column."""
    scope, sep, seen_by = stored.partition(_SEEN_BY)
    return scope, (seen_by if sep else None)


def _state_orgs(scope: str) -> Any:
    bodies = select(Organization.id).where(
        Organization.kind == OrgKind.NATIONAL_BODY.value, Organization.country == scope
    )
    return select(Organization.id).where(
        or_(
            and_(Organization.country == scope, Organization.kind.in_(STATE_KINDS)),
            Organization.parent_id.in_(bodies),
        )
    )


def _event_scope(scope: str) -> ColumnElement[bool]:
    """Events concerning a state: reported by it, or about a resource of one of its
    organisations (its national body's constituents included)."""
    if scope == NETWORK:
        return true()
    return or_(Event.country == scope, Event.owner_org_id.in_(_state_orgs(scope)))


# --- who may ask, who may read ------------------------------------------------------------------


def _country_of(session: Session, principal: Principal) -> str | None:
    if principal.org_id is None:
        return None
    return session.scalar(select(Organization.country).where(Organization.id == principal.org_id))


def _is_body_of(session: Session, principal: Principal, scope: str) -> bool:
    return (
        principal.org_kind == OrgKind.NATIONAL_BODY.value
        and scope != NETWORK
        and _country_of(session, principal) == scope
    )


def check_request(session: Session, principal: Principal | None, scope: str) -> None:
    """May `principal` have a report of `scope` built? (None: the operator at the console.)"""
    if principal is None:
        return
    if principal.anonymous:
        raise Forbidden("sign in first")
    if principal.role not in (Role.ADMIN, Role.ANALYST, Role.READER):
        raise Forbidden("reports are for the staff of the centre and of national bodies")
    if principal.is_centre or _is_body_of(session, principal, scope):
        return
    if scope == NETWORK:
        raise Forbidden("the network report is for the centre")
    audience(session, scope)  # a state with no national body is a wrong value (422) to all
    raise Forbidden(f"the report of {scope} is for its national body and the centre")


def check_create(session: Session, principal: Principal | None, scope: str) -> None:
    """Building and storing a report on demand: analysts and admins with the write scope."""
    if principal is None:
        return
    try:
        policy.require_scope(principal, TokenScope.WRITE)
    except policy.AccessDenied as exc:
        raise Forbidden(str(exc)) from None
    if principal.role not in (Role.ADMIN, Role.ANALYST):
        raise Forbidden("only analysts and admins build reports")
    check_request(session, principal, scope)


def buildable_scopes(session: Session, principal: Principal) -> list[str]:
    """The scopes `principal` may build reports of (for the form offering them)."""
    if principal.anonymous or principal.role not in (Role.ADMIN, Role.ANALYST):
        return []
    if principal.is_centre:
        return [NETWORK, *states(session)]
    if principal.org_kind == OrgKind.NATIONAL_BODY.value:
        country = _country_of(session, principal)
        return [country] if country else []
    return []


def visible_filter(session: Session, principal: Principal) -> ColumnElement[bool]:
    """Stored reports `principal` may read, by the access policy."""
    return policy.report_filter(principal, StoredReport, _country_of(session, principal))


def _check_view(
    session: Session, principal: Principal | None, scope: str, tlp: str, seen_by: str | None
) -> None:
    if principal is None:
        return
    if principal.is_centre and (scope == NETWORK or seen_by == CENTRE_VIEW):
        return
    if _is_body_of(session, principal, scope) and tlp != TLP.RED.value:
        return
    raise Forbidden(
        f"the report of {scope} is marked TLP:{tlp.upper()} and stays with its national body"
    )


# --- suppression ------------------------------------------------------------------------------
#
# What a reader knows of a published column: its total (the report's total, exact once it is
# k or more), every exact count, that a "<k" count lies in 1..k-1 (zeros are shown as 0), and
# the range of a count shown as a range. The rule below keeps every count below k from being
# pinned to one value by that knowledge, on the assumption that the reader knows the rule too.


@dataclass(frozen=True)
class _Bound:
    low: int
    high: int | None  # None: no upper bound the reader knows of


def _pinned(bounds: list[_Bound], withheld_sum: int, small: int) -> bool:
    """Is any of the first `small` withheld counts the only value its bounds and the known
    sum of all withheld counts allow? (For one sum over boxed integers, each count can take
    every value between these two ends, so the check is exact.)"""
    for i in range(small):
        others = bounds[:i] + bounds[i + 1 :]
        high = min(bounds[i].high or withheld_sum, withheld_sum - sum(b.low for b in others))
        low = bounds[i].low
        if all(b.high is not None for b in others):
            low = max(low, withheld_sum - sum(b.high or 0 for b in others))
        if high <= low:
            return True
    return False


def _column(values: dict[Any, int], k: int) -> tuple[dict[Any, Cell], bool]:
    """A column of counts as published, and whether it is withheld whole (see suppress_column)."""
    out: dict[Any, Cell] = dict(values)
    total = sum(values.values())
    if k <= 1 or total == 0:
        return out, False
    if total < k:
        # The total itself is withheld: any per-key figure would narrow it down (two
        # non-zero keys under a total below 3 are 1 each). Each reads as the range it may
        # be, 0 included: the other period's keys are listed in this column too, where a
        # "<3" would claim an event that is not there.
        return {key: f"0–{k - 1}" for key in values}, True
    small = sorted((key for key, n in values.items() if 0 < n < k), key=str)
    if not small:
        return out, False
    for key in small:
        out[key] = f"<{k}"
    withheld = sum(values[key] for key in small)
    bounds = [_Bound(1, k - 1)] * len(small)
    # Whether to withhold more is decided from what the column publishes (which counts are
    # small, the total, the shown counts), never from the withheld values: a rule that
    # withheld more only when the small counts were, say, all 1 would tell exactly that.
    # So whenever a count is withheld, so is the largest shown count. Picking the largest
    # tells the reader only that it is at least every other shown count (a lower bound);
    # picking the smallest would also bound it from above, which pins the small ones in more
    # cases (e.g. 5, 5, "<3" with a range on the first 5).
    shown = [(n, str(key), key) for key, n in values.items() if n >= k]
    if shown:
        n, name, key = max(shown)
        # What being picked tells: at least every other shown count, and more than those
        # it beat only on the tie-break by name.
        floor = max([k, *(m if other < name else m + 1 for m, other, _ in shown if other != name)])
        together = withheld + n
        if not _pinned([*bounds, _Bound(floor, None)], together, len(small)):
            # The range is what the reader derives anyway from the total and the bounds.
            low = max(floor, together - len(small) * (k - 1))
            out[key] = f"{low}–{together - len(small)}"
            return out, False
    # Left: every count at its least possible value (e.g. 3, 3, "<3", "<3" of 8), which no
    # range hides; or no count of k or more to show, where the "<k" cells of a known total
    # would narrow each other down (1, 1, 1 of 3). The column is withheld whole, and its
    # keys are not listed on its account.
    return {key: f"0–{total}" for key in values}, True


def suppress_column(values: dict[Any, int], k: int) -> dict[Any, Cell]:
    """Publish a column of counts without revealing small ones.

    * Primary: a count with 0 < n < k is shown as "<k".
    * Secondary: the total minus the shown counts is the sum of the withheld ones, so
      whenever a count is withheld the largest shown count is withheld too, as the range the
      reader could derive anyway. If the sum still pins a withheld count to one value (every
      count at its least value, e.g. 3, 3, "<3", "<3" of 8), the whole column is withheld:
      every cell "0–total", and its keys are not listed on its account.
    * A total below k is withheld: every cell of the column is "<k".
    """
    return _column(values, k)[0]


def _change(current: Cell, previous: Cell) -> float | None:
    # A change is a derived figure: shown only between two published counts.
    if isinstance(current, int) and isinstance(previous, int) and previous > 0:
        return round((current - previous) * 100.0 / previous, 1)
    return None


def published_low(cell: Cell) -> int | None:
    """The least value a published cell states: the count, or a range's lower end."""
    if isinstance(cell, int):
        return cell
    low, sep, _high = cell.partition("–")
    return int(low) if sep and low.isdigit() else None


def _rows(current: dict[Any, int], previous: dict[Any, int], k: int, suppress: bool) -> list[Row]:
    """The rows of a breakdown. Unsuppressed columns (the RSIT classes) are published as they
    are unless their period's total is below k, which withholds them whole."""

    def publish(values: dict[Any, int]) -> tuple[dict[Any, Cell], bool]:
        if suppress:
            return _column(values, k)
        if 0 < sum(values.values()) < k:
            return _column(values, k)
        return dict(values), False

    # A key is listed on account of a published column only: listing a key of a column
    # withheld whole would show that it has events there.
    cur_cells, cur_whole = publish(current)
    prev_cells, prev_whole = publish(previous)
    keys = {key for key, n in current.items() if n and not cur_whole}
    keys |= {key for key, n in previous.items() if n and not prev_whole}

    def cell(cells: dict[Any, Cell], whole: bool, key: Any) -> Cell:
        if key in cells:
            return cells[key]
        if whole:  # a key of the other column: its count here is withheld with the rest
            return next(iter(cells.values()))
        return 0

    rows = [
        Row(
            key,
            cell(cur_cells, cur_whole, key),
            cell(prev_cells, prev_whole, key),
            None,
        )
        for key in keys
    ]
    for row in rows:
        row.change_pct = _change(row.events, row.previous)

    # Order by published figures only: sorting withheld counts by their true values would
    # tell them apart. A range sorts by its lower end, which it states.
    def order(row: Row) -> tuple[int, int, str]:
        low = published_low(row.events)
        if low is not None and row.events != 0:
            return (0, -low, str(row.key))
        if row.events == 0:
            return (2, 0, str(row.key))
        return (1, 0, str(row.key))

    return sorted(rows, key=order)


def _small_total(n: int, k: int) -> Cell:
    return f"<{k}" if 0 < n < k else n


def _cross_state_cell(
    n: int, countries: Iterable[str | None], state_cells: dict[Any, Cell], k: int
) -> Cell:
    """The event count of an indicator or a campaign, published under the by-state rule.

    Its events lie in the states it names, so an exact count bounds the sum of their
    by-state counts from below: 4 events of KZ and UZ pin two "<3" states to 2 each. So a
    count below k is "<k" (`_small_total`, as everywhere), and a larger one is exact only
    when every state it names has an exact count; otherwise it reads "≥k", which raises no
    withheld state above its least value (each "<k" count lies in 1..k-1)."""
    cell = _small_total(n, k)
    if isinstance(cell, str) or all(isinstance(state_cells.get(c, 0), int) for c in countries):
        return cell
    return f"≥{k}"


def _published_rank(cell: Cell) -> int:
    """The order a count of an indicator or a campaign takes from its published cell alone
    (never from the withheld value): exact counts by value, then "≥k", then "<k"."""
    if isinstance(cell, int):
        return cell
    return int(cell[1:]) if cell.startswith("≥") else 0


# --- the queries ------------------------------------------------------------------------------


@dataclass
class _Counts:
    """One period's GROUP BY result folded by dimension."""

    total: int = 0
    occurrences: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    by_state: dict[str | None, int] = field(default_factory=dict)
    by_sector: dict[str | None, int] = field(default_factory=dict)
    tlps: set[str] = field(default_factory=set)


def _in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return (Event.time >= start) & (Event.time < end)


def _counts(
    session: Session,
    view: _View,
    conditions: list[ColumnElement[bool]],
    start: datetime,
    end: datetime,
) -> _Counts:
    # One pass over the period's events: the groups (class x state x sector x TLP) are few
    # even when the events are millions, and every breakdown is folded from them.
    # An owner the view may not see (another state's constituent) lends no sector: its
    # events count under none, as the event pages show them without an owner.
    owner = aliased(Organization)
    stmt = (
        select(
            Event.rsit_class,
            Event.country,
            owner.sector,
            Event.tlp,
            func.count(),
            func.coalesce(func.sum(Event.count), 0),
        )
        .select_from(Event)
        .outerjoin(owner, and_(owner.id == Event.owner_org_id, owner.id.in_(view.orgs())))
        .where(_in(start, end), *conditions)
        .group_by(Event.rsit_class, Event.country, owner.sector, Event.tlp)
    )
    out = _Counts()
    for rsit_class, country, sector, tlp, n, occurrences in session.execute(stmt):
        out.total += n
        out.occurrences += int(occurrences)
        out.by_class[rsit_class] = out.by_class.get(rsit_class, 0) + n
        out.by_state[country] = out.by_state.get(country, 0) + n
        sector = (sector or "").strip() or None
        out.by_sector[sector] = out.by_sector.get(sector, 0) + n
        out.tlps.add(tlp)
    return out


def _event_techniques(
    session: Session, conditions: list[ColumnElement[bool]], p: Period
) -> dict[str, int]:
    # Grouped by the stored comma-separated list: few distinct lists, split afterwards.
    stmt = (
        select(Event.attack_techniques, func.count())
        .where(_in(p.start, p.end), Event.attack_techniques != "", *conditions)
        .group_by(Event.attack_techniques)
    )
    counts: dict[str, int] = {}
    for text, n in session.execute(stmt):
        for technique in attack.normalise((text or "").split(",")):
            counts[technique] = counts.get(technique, 0) + n
    return counts


def owned_resource(index: LookupIndex, value: str) -> bool:
    """Is `value` (an address, network, URL, domain, e-mail address or AS number) within an
    organisation's registered resources, by the owner lookup that ties events to owners? Such
    a value names a victim (an infected host's address), whoever reported it."""
    text = value.strip()
    if "://" in text:
        host = text.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        text = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
    elif "/" in text:  # a network concerns the owner of its first address
        text = text.split("/", 1)[0]
    return bool(text) and index.lookup(text) is not None


INDICATOR_PAGE = 200  # candidates read at a time; owners' own values are skipped


def _indicators(
    session: Session,
    view: _View,
    scope: ColumnElement[bool],
    p: Period,
    state_cells: dict[Any, Cell],
    k: int,
) -> tuple[list[IndicatorRow], set[str]]:
    """Indicators in the scope's events of the period that two or more states reported,
    counting only events the view may see (so a hidden sighting never adds a state).

    An owner's own resource is left out: listing it would name a victim. The list is ordered
    and cut by the published cells (`_cross_state_cell`), never by withheld values: the
    database orders by states and by the count with every count below k as one, which no
    published cell exceeds, so reading stops once no later row can enter the list."""
    visible = view.visible(Event)
    # looked up for each cross-state indicator: the flag's partial index leads the query
    in_scope = (
        select(EventObservable.indicator_id)
        .join(Event, Event.id == EventObservable.event_id)
        .where(EventObservable.indicator_id == Indicator.id, _in(p.start, p.end), visible, scope)
        .exists()
    )
    n_states = func.count(distinct(Event.country))
    n_events = func.count(distinct(Event.id))
    ceiling = sql_case((n_events >= k, n_events), else_=0)  # no published rank exceeds it
    query = (
        select(Indicator.id, Indicator.kind, Indicator.value, n_states, n_events, ceiling)
        .select_from(EventObservable)
        .join(Event, Event.id == EventObservable.event_id)
        .join(Indicator, Indicator.id == EventObservable.indicator_id)
        .where(
            _in(p.start, p.end),
            visible,
            in_scope,
            # Reported by two states, and no common value (warning lists): what correlation
            # flags after each intake. Only those can be seen in two states here, and the
            # partial index on the flag spares reading every indicator of the period.
            is_set(Indicator.cross_state),
        )
        .group_by(Indicator.id, Indicator.kind, Indicator.value)
        .having(n_states >= 2)
        .order_by(n_states.desc(), ceiling.desc(), Indicator.value, Indicator.id)
    )
    index = current_index(session)
    # The best TOP_INDICATORS so far, in order: one insertion each, never a re-sort.
    kept: list[tuple[tuple[int, int, str, int], IndicatorRow]] = []
    result = session.execute(query.execution_options(yield_per=INDICATOR_PAGE))
    try:
        for page in result.partitions():
            countries = _countries(session, visible, p, [r[0] for r in page])
            stop = False
            for indicator_id, kind, value, states, events, top in page:
                if (
                    len(kept) >= TOP_INDICATORS
                    and (-states, -top, value, indicator_id) > (kept[-1][0])
                ):
                    stop = True  # neither this row nor any after it can enter the list
                    break
                if owned_resource(index, value):
                    continue
                names = sorted(countries.get(indicator_id, set()))
                cell = _cross_state_cell(events, names, state_cells, k)
                key = (-states, -_published_rank(cell), value, indicator_id)
                bisect.insort(
                    kept,
                    (key, IndicatorRow(kind, value, states, cell, names)),
                    key=lambda item: item[0],
                )
                del kept[TOP_INDICATORS:]
            if stop:
                break
    finally:
        result.close()
    top_rows = kept
    if not top_rows:
        return [], set()
    ids = [key[3] for key, _row in top_rows]
    tlps = set(
        session.scalars(
            select(Event.tlp)
            .join(EventObservable, EventObservable.event_id == Event.id)
            .where(_in(p.start, p.end), visible, EventObservable.indicator_id.in_(ids))
            .distinct()
        )
    )
    return [row for _key, row in top_rows], tlps


def _countries(
    session: Session, visible: ColumnElement[bool], p: Period, ids: list[int]
) -> dict[int, set[str]]:
    """The reporting states of each indicator's visible events in the period."""
    found: dict[int, set[str]] = {}
    for chunk in chunks(ids):
        for indicator_id, country in session.execute(
            select(EventObservable.indicator_id, Event.country)
            .join(Event, Event.id == EventObservable.event_id)
            .where(_in(p.start, p.end), visible, EventObservable.indicator_id.in_(list(chunk)))
            .group_by(EventObservable.indicator_id, Event.country)
        ):
            if country:
                found.setdefault(indicator_id, set()).add(country)
    return found


# --- sections from other domains (optional) --------------------------------------------------


def _optional(module: str) -> Any | None:
    """Import a module of another domain if it is installed; a missing module means its
    section says "not available", any other import error is a bug and surfaces."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise


def _hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600.0


def _cases(
    session: Session, view: _View, scope: str, p: Period
) -> tuple[Cases, dict[str, int], set[str]]:
    """Cases opened and closed in the period, time to close, and the ATT&CK techniques
    added to cases in the period; "not available" without the cases module."""
    module = _optional("concord.cases.model")
    if module is None:
        return Cases(available=False), {}, set()
    case, participant, technique = module.Case, module.CaseParticipant, module.CaseTechnique
    conditions: list[ColumnElement[bool]] = [view.visible(case)]
    if scope != NETWORK:
        # A state's cases: opened by one of its organisations, or with its body taking part.
        state_orgs = _state_orgs(scope)
        conditions.append(
            or_(
                case.origin_org_id.in_(state_orgs),
                case.id.in_(select(participant.case_id).where(participant.org_id.in_(state_orgs))),
            )
        )

    def count(column: Any, start: datetime, end: datetime) -> tuple[int, set[str]]:
        rows = session.execute(
            select(case.tlp, func.count())
            .where(column >= start, column < end, *conditions)
            .group_by(case.tlp)
        ).all()
        return sum(n for _, n in rows), {t for t, _ in rows}

    opened, tlps = count(case.created_at, p.start, p.end)
    closed, closed_tlps = count(case.closed_at, p.start, p.end)
    previous_opened, prev_tlps = count(case.created_at, p.previous_start, p.previous_end)
    previous_closed, prev_closed_tlps = count(case.closed_at, p.previous_start, p.previous_end)
    tlps |= closed_tlps | prev_tlps | prev_closed_tlps
    # The durations of the cases closed in the period, for the median (which has no portable
    # SQL aggregate on SQLite and PostgreSQL alike); cases are few, unlike events.
    durations = [
        _hours(created, closed_at)
        for created, closed_at in session.execute(
            select(case.created_at, case.closed_at).where(
                case.closed_at >= p.start, case.closed_at < p.end, *conditions
            )
        )
        if created is not None and closed_at is not None
    ]
    by_resolution = {
        resolution or "": n
        for resolution, n in session.execute(
            select(case.resolution, func.count())
            .where(case.closed_at >= p.start, case.closed_at < p.end, *conditions)
            .group_by(case.resolution)
        )
    }
    section = Cases(
        available=True,
        # most frequent first, then by name
        closed_by_resolution=dict(sorted(by_resolution.items(), key=lambda kv: (-kv[1], kv[0]))),
        opened=opened,
        closed=closed,
        previous_opened=previous_opened,
        previous_closed=previous_closed,
        median_hours_to_close=round(statistics.median(durations), 1) if durations else None,
        mean_hours_to_close=round(statistics.fmean(durations), 1) if durations else None,
    )
    techniques: dict[str, int] = {}
    for technique_id, case_tlp, n in session.execute(
        select(technique.technique_id, case.tlp, func.count())
        .join(case, case.id == technique.case_id)
        .where(technique.added_at >= p.start, technique.added_at < p.end, *conditions)
        .group_by(technique.technique_id, case.tlp)
    ):
        for t in attack.normalise([technique_id]):
            techniques[t] = techniques.get(t, 0) + n
        tlps.add(case_tlp)
    return section, techniques, tlps


CAMPAIGN_CHUNK = 1000  # campaigns whose visible part is computed in one go


def _second_state_at(events: Iterable[tuple[str | None, datetime, datetime]]) -> datetime | None:
    """When events of a second state first joined (None: one state or none)."""
    first: dict[str, datetime] = {}
    for country, time, _last in events:
        if country and (country not in first or time < first[country]):
            first[country] = time
    return sorted(first.values())[1] if len(first) >= 2 else None


def _event_tlps(session: Session, event_ids: list[int]) -> set[str]:
    tlps: set[str] = set()
    for chunk in chunks(event_ids):
        tlps.update(session.scalars(select(Event.tlp).where(Event.id.in_(chunk)).distinct()))
    return tlps


def _seen_whole(
    session: Session, model: Any, visible: ColumnElement[bool], ids: list[int], end: datetime
) -> dict[int, tuple[str, dict[int, tuple[str | None, datetime, datetime]]]]:
    """Of these campaigns, those whose every member event the audience sees, each with its
    stored label and its member events before `end` (country, time, last seen). Seeing
    every member, the audience sees every link that joins them, so its part is the whole."""
    ce, campaign = model.CampaignEvent, model.Campaign
    if not ids:
        return {}
    members = dict(
        session.execute(
            select(ce.campaign_id, func.count())
            .where(ce.campaign_id.in_(ids))
            .group_by(ce.campaign_id)
        ).all()
    )
    seen = dict(
        session.execute(
            select(ce.campaign_id, func.count())
            .join(Event, Event.id == ce.event_id)
            .where(ce.campaign_id.in_(ids), visible)
            .group_by(ce.campaign_id)
        ).all()
    )
    whole = [cid for cid in ids if members.get(cid) and seen.get(cid) == members[cid]]
    if not whole:
        return {}
    labels = dict(
        session.execute(select(campaign.id, campaign.label).where(campaign.id.in_(whole))).all()
    )
    found: dict[int, tuple[str, dict[int, tuple[str | None, datetime, datetime]]]] = {
        cid: (labels.get(cid) or f"campaign {cid}", {}) for cid in whole
    }
    for cid, event_id, country, time, last in session.execute(
        select(ce.campaign_id, Event.id, Event.country, Event.time, Event.last_seen)
        .join(Event, Event.id == ce.event_id)
        .where(ce.campaign_id.in_(whole), Event.time < end)
    ):
        found[cid][1][event_id] = (country, time, last)
    return found


def _campaigns(
    session: Session,
    view: _View,
    scope: ColumnElement[bool],
    p: Period,
    state_cells: dict[Any, Cell],
    k: int,
    *,
    withheld: bool = False,
) -> tuple[Campaigns, set[str]]:
    """Campaigns new in the period as the audience sees them.

    What the audience sees of a campaign is what the campaigns page shows a reader of its
    organisation (`correlation.campaign_figures`): the part joined by indicators that its
    visible events show in two or more states. The network-wide membership is not used: it
    can run through a report the audience may not see. A campaign is new in the period in
    which that part first holds events of two states, and is the scope's when the part holds
    an event of the scope by the end of the period; figures count its events up to then.

    For a view of two principals, the part is joined of the events both may see, through
    indicators those events show in two states. Event counts follow `_cross_state_cell`; the
    largest are listed, by their published cells. A campaign is not named after an owner's
    own resource."""
    model = _optional("concord.events.correlation_model")
    correlation = _optional("concord.events.correlation") if model is not None else None
    if model is None or correlation is None:
        return Campaigns(available=False), set()
    if withheld:
        return Campaigns(available=True, withheld=True), set()
    ce = model.CampaignEvent

    visible = view.visible(Event)
    # Candidates, a superset narrowed in SQL: an event of the period (the one bringing the
    # second state in) and, by the end of the period, visible members of two states and one
    # of the scope.
    in_period = (
        select(ce.campaign_id)
        .join(Event, Event.id == ce.event_id)
        .where(_in(p.start, p.end), visible)
    )
    candidates = list(
        session.scalars(
            select(ce.campaign_id)
            .join(Event, Event.id == ce.event_id)
            .where(Event.time < p.end, visible, ce.campaign_id.in_(in_period))
            .group_by(ce.campaign_id)
            .having(func.count(distinct(Event.country)) >= 2)
            .order_by(ce.campaign_id)
        )
    )
    found: list[tuple[datetime, int, str, dict[int, tuple[str | None, datetime, datetime]]]] = []
    for chunk in chunks(candidates, CAMPAIGN_CHUNK):
        chunk = list(chunk)
        scoped = set(
            session.scalars(
                select(ce.event_id)
                .join(Event, Event.id == ce.event_id)
                .where(ce.campaign_id.in_(chunk), Event.time < p.end, visible, scope)
            )
        )
        # A campaign the audience sees whole is what its visible part is: read in one query
        # instead of rebuilding the part (most campaigns, for the centre's network report).
        whole = _seen_whole(session, model, visible, chunk, p.end)
        parts = {cid: (label, events) for cid, (label, events) in whole.items()}
        rest = [cid for cid in chunk if cid not in whole]
        figures = correlation.campaign_figures(session, view.linker, rest, visible)
        for cid, (figure, part) in figures.items():
            parts[cid] = (figure.label, part.events)
        for cid, (label, part_events) in parts.items():
            events = {ev: row for ev, row in part_events.items() if row[1] < p.end}
            reached = _second_state_at(events.values())
            if reached is None or not p.start <= reached < p.end or not scoped & events.keys():
                continue
            first = min(time for _country, time, _last in events.values())
            found.append((first, cid, label, events))
    # The count of new campaigns rests on all of them, so all their events mark the report.
    tlps = _event_tlps(session, sorted(ev for *_head, events in found for ev in events))
    index = current_index(session)
    items = []
    for first, cid, label, events in found:
        states = sorted({country for country, _t, _l in events.values() if country})
        items.append(
            CampaignRow(
                id=int(cid),
                # an owner's own address would name the victim: then a neutral name
                name=f"campaign {cid}" if owned_resource(index, label) else label,
                first_seen=first.isoformat(),
                events=_cross_state_cell(len(events), states, state_cells, k),
                states=states,
            )
        )
    # the largest first, by published cells: the table shows TOP_CAMPAIGNS of them
    items.sort(key=lambda c: (-_published_rank(c.events or 0), c.first_seen or "", c.id))
    return Campaigns(available=True, items=items[:TOP_CAMPAIGNS], total=len(found)), tlps


# --- building ---------------------------------------------------------------------------------


def _max_tlp(labels: Iterable[str]) -> str:
    ranks = []
    for label in labels:
        try:
            ranks.append(TLP(label))
        except ValueError:  # an unknown label is treated as the narrowest
            ranks.append(TLP.RED)
    return max(ranks, key=lambda t: t.rank).value if ranks else TLP.CLEAR.value


def _begun(period: Period | str, now: Callable[[], datetime] = utcnow) -> Period:
    p = periods.parse(period) if isinstance(period, str) else period
    if p.start > now():
        # A period still running is reported as far as it went; one not begun has nothing.
        raise InvalidInput(f"the period {p.label} has not begun yet", FaultLocation(field="period"))
    return p


def _scope_and_period(
    scope: str, period: Period | str, now: Callable[[], datetime] = utcnow
) -> tuple[str, Period]:
    """Both read, and the faults of both told at once."""
    faults = Faults()
    parsed = faults.check(lambda: parse_scope(scope), "")
    begun = faults.check(lambda: _begun(period, now), None)
    faults.raise_any()
    assert begun is not None  # a fault otherwise
    return parsed, begun


def build_report(
    session: Session,
    principal: Principal | None,
    period: Period | str,
    scope: str,
    *,
    min_count_override: int | None = None,
    now: Callable[[], datetime] = utcnow,
) -> Report:
    """Build the report of `scope` for `period`. `principal` is who asks (None for the
    operator at the console and for the scheduled run); the content is the scope's view,
    narrowed to what the requester may see too when the centre asks for a state's (`_View`)."""
    scope, p = _scope_and_period(scope, period, now)
    k = check_min_count(min_count_override) if min_count_override is not None else min_count()
    check_request(session, principal, scope)
    view = view_for(session, principal, scope)
    in_scope = _event_scope(scope)
    conditions = [view.visible(Event), in_scope]

    cur = _counts(session, view, conditions, p.start, p.end)
    prev = _counts(session, view, conditions, p.previous_start, p.previous_end)
    # A period with fewer than k events would give its small counts away through the totals,
    # so then those are suppressed as well.
    small_cur = 0 < cur.total < k
    totals = Row("events", _small_total(cur.total, k), _small_total(prev.total, k))
    totals.change_pct = _change(totals.events, totals.previous)
    # RSIT classes identify no victim and are published as they are, unless the period's
    # total is below k (then `_rows` withholds that period's column whole).
    by_class = _rows(cur.by_class, prev.by_class, k, suppress=False)

    # Indicators and campaigns name the states they were seen in, and their event counts
    # bound those states' counts: they follow the by-state column. Withheld whole (or a
    # total below k), it lists no state, and neither do they.
    state_cells, states_withheld = _column(cur.by_state, k)
    indicators: list[IndicatorRow] = []
    indicator_tlps: set[str] = set()
    if not states_withheld:
        indicators, indicator_tlps = _indicators(session, view, in_scope, p, state_cells, k)
    cases, case_techniques, case_tlps = _cases(session, view, scope, p)
    campaigns, campaign_tlps = _campaigns(
        session, view, in_scope, p, state_cells, k, withheld=states_withheld
    )
    event_techniques = _event_techniques(session, conditions, p)
    cat = attack.catalogue()
    return Report(
        period=p,
        scope=scope,
        tlp=_max_tlp(cur.tlps | prev.tlps | indicator_tlps | case_tlps | campaign_tlps),
        generated_at=now(),
        min_count=k,
        totals=totals,
        occurrences=_small_total(cur.occurrences, k) if small_cur else cur.occurrences,
        by_class=by_class,
        by_state=_rows(cur.by_state, prev.by_state, k, suppress=True),
        by_sector=_rows(cur.by_sector, prev.by_sector, k, suppress=True),
        indicators=indicators,
        indicators_withheld=states_withheld,
        campaigns=campaigns,
        cases=cases,
        techniques=attack.profile(event_techniques, case_techniques, k),
        mitigations=attack.rank_mitigations(event_techniques, case_techniques, k),
        attack_version=cat.version,
        attack_notice=cat.notice,
        seen_by=view.seen_by,
    )


def build_for(session: Session, principal: Principal | None, period: str, scope: str) -> Report:
    """build_report, refusing a result its requester may not read. Built with the view of
    `view_for`, a report holds nothing its requester may not see, so this refuses nothing on
    account of hidden content; it stands guard over the rule all the same."""
    report = build_report(session, principal, period, scope)
    _check_view(session, principal, report.scope, report.tlp, report.seen_by)
    return report


# --- storing and reading ----------------------------------------------------------------------


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, sort_keys=True)


def store(session: Session, report: Report) -> StoredReport:
    """Keep a report as JSON: any format, in any language, is rendered from it when read."""
    row = StoredReport(
        period=report.period.label,
        scope=stored_scope(report.scope, report.seen_by),
        tlp=report.tlp,
        created_at=report.generated_at,
        format="json",
        content=to_json(report),
    )
    session.add(row)
    session.flush()
    return row


def create_report(
    session: Session, principal: Principal | None, period: str, scope: str
) -> tuple[StoredReport, Report]:
    """Build a report on demand and store it. It is built in a read-only session of its
    own, as the worker builds them: on SQLite a build of many seconds would otherwise hold
    the write lock of `session`, and every other request would wait for it. What the caller
    wrote before should be committed first, for the same reason."""
    scope, _ = _scope_and_period(scope, period)
    with reading_beside(session) as reading:
        check_create(reading, principal, scope)
        report = build_for(reading, principal, period, scope)
    row = store(session, report)
    audit.record(
        session,
        principal,
        "create",
        "report",
        row.id,
        {"period": report.period.label, "scope": report.scope, "tlp": report.tlp},
    )
    return row, report


def request_report(
    session: Session, principal: Principal, period: str, scope: str
) -> ReportRequest:
    """Ask for a report to be built by a worker (`reports.tasks.build_requested`). Whatever
    can be refused now is: the period, the scope and the requester's right to it."""
    scope, p = _scope_and_period(scope, period)
    min_count()  # a threshold that cannot be used fails the request, not the worker
    check_create(session, principal, scope)
    audience(session, scope)  # a state without a national body has no report
    if not principal.user_id:
        raise Forbidden("reports are built on request of a user")
    row = ReportRequest(user_id=principal.user_id, period=p.label, scope=scope, status="queued")
    session.add(row)
    session.flush()
    audit.record(
        session, principal, "request", "report", row.id, {"period": p.label, "scope": scope}
    )
    return row


def get_request(session: Session, principal: Principal, request_id: int) -> ReportRequest:
    row = session.scalar(
        select(ReportRequest).where(
            ReportRequest.id == request_id, policy.request_filter(principal, ReportRequest)
        )
    )
    if row is None:
        raise NotFound(f"no report request {request_id}")
    return row


def recent_requests(session: Session, principal: Principal, limit: int = 10) -> list[ReportRequest]:
    """The principal's latest requests, newest first (the reports page shows their state)."""
    return list(
        session.scalars(
            select(ReportRequest)
            .where(policy.request_filter(principal, ReportRequest))
            .order_by(ReportRequest.id.desc())
            .limit(limit)
        )
    )


def run_request(request_id: int) -> str:
    """Build a requested report, as its requester may read it, and store it.

    Built in a read-only transaction (on SQLite a long one must not hold the write lock
    intake needs), stored in a short one. A refusal found only now (the centre asking for a
    state's report that turned out AMBER+STRICT) is the request's answer, not a retry."""
    from concord.access import service as access

    with session_scope() as session:
        req = session.get(ReportRequest, request_id)
        if req is None or req.status not in ("queued", "building"):
            return "skipped"
        req.status = "building"
        user = session.get(User, req.user_id)
        org = session.get(Organization, user.org_id) if user is not None else None
        if user is None or org is None or not user.active:
            _finish(session, req, "failed", error="the requesting user is no longer active")
            return "failed"
        principal = access.principal_for(user, org)
        period, scope = req.period, req.scope
    try:
        with session_scope(readonly=True) as session:
            report = build_for(session, principal, period, scope)
        with session_scope() as session:
            row = store(session, report)
            req = session.get(ReportRequest, request_id)
            _finish(session, req, "ready", report_id=row.id)
            audit.record(
                session,
                principal,
                "create",
                "report",
                row.id,
                {"period": report.period.label, "scope": report.scope, "tlp": report.tlp},
            )
    except ConcordError as exc:
        with session_scope() as session:
            _finish(session, session.get(ReportRequest, request_id), "failed", error=exc.message)
        return "failed"
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("report request %s failed: incident %s", request_id, incident)
        with session_scope() as session:
            _finish(
                session,
                session.get(ReportRequest, request_id),
                "failed",
                error=f"an internal error occurred; quote reference {incident} to the operators",
            )
        return "failed"
    return "ready"


def _finish(
    session: Session,
    req: ReportRequest,
    status: str,
    *,
    report_id: int | None = None,
    error: str | None = None,
) -> None:
    req.status, req.report_id, req.error, req.finished_at = status, report_id, error, utcnow()


def load(row: StoredReport) -> Report:
    if row.format != "json":
        raise ConcordError(f"report {row.id} is stored as {row.format}, not as JSON", 409)
    return Report.from_dict(json.loads(row.content))


def list_reports(
    session: Session,
    principal: Principal,
    *,
    scope: str | None = None,
    period: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[StoredReport]:
    """Newest first (by id), without their content. A state's report seen by the centre
    has the scope "KZ@centre" (`split_scope`), and only the centre reads it."""
    stmt = select(StoredReport).options(defer(StoredReport.content))
    stmt = stmt.where(visible_filter(session, principal))
    if scope:
        wanted = parse_scope(scope)  # with the state's reports seen by the centre
        if wanted != NETWORK:
            audience(session, wanted)  # refused as a request for it is: no such state
        stmt = stmt.where(StoredReport.scope.in_([wanted, stored_scope(wanted, CENTRE_VIEW)]))
    if period:
        stmt = stmt.where(StoredReport.period == periods.parse(period).label)
    if after_id:
        stmt = stmt.where(StoredReport.id < after_id)
    return list(session.scalars(stmt.order_by(StoredReport.id.desc()).limit(limit)))


def get_report(session: Session, principal: Principal, report_id: int) -> StoredReport:
    row = session.scalar(
        select(StoredReport).where(StoredReport.id == report_id, visible_filter(session, principal))
    )
    if row is None:
        raise NotFound(f"no report {report_id}")
    return row


def scheduled_scopes(session: Session) -> list[tuple[str, str, Principal | None]]:
    """What the monthly run builds, as (stored scope, scope, asked for by): the network
    report, each state's report for its national body, and each state's report as seen by
    the centre (the only version of it the centre reads)."""
    found = states(session)
    centre = audience(session, NETWORK)
    return [
        (NETWORK, NETWORK, None),
        *((s, s, None) for s in found),
        *((stored_scope(s, CENTRE_VIEW), s, centre) for s in found),
    ]


def build_all(session: Session, p: Period) -> list[Report]:
    """The reports of a period the monthly run builds (`scheduled_scopes`)."""
    return [build_report(session, who, p, scope) for _, scope, who in scheduled_scopes(session)]


def build_scheduled(session: Session, p: Period) -> list[StoredReport]:
    """build_all, stored."""
    return [store(session, report) for report in build_all(session, p)]
