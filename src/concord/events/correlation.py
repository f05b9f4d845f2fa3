"""Cross-state correlation: indicators several member states reported, alerts and campaigns.

This module is the only writer of correlation state: `Indicator.cross_state` and
`Indicator.warning_list`, the `correlation_alerts` rows and the `campaigns` and
`campaign_events` tables. Everything it stores is the network-wide truth; every read below
narrows it to what one principal may see, through `policy.tlp_filter` on the events behind
it, at query time. Nothing pre-filtered is stored.

What a principal is told follows one rule: an indicator (or campaign) is cross-state *for
them* only if the events they can see come from two or more states. Seeing one's own report
flagged "also reported elsewhere" while the other report is AMBER would already leak it.

Correlation pass (`correlate`):

1. one GROUP BY over sightings finds indicators reported by organisations of two or more
   countries (optionally only those sighted since a time);
2. those on a MISP warning list get the list's id in `warning_list` (skipped cheaply by
   the quick passes after an intake; the periodic full pass judges every flag again, for
   warning lists a release changed), the others get `cross_state = true` (bulk UPDATE);
3. every state involved in a cross-state indicator gets an alert row once, including a
   state that reports it after the indicator became cross-state.

Campaigns (`update_campaigns`) are stored, not computed per request: the connected
components (union-find) of the graph event <-> cross-state indicator (leaving out indicators
in more than HUB_EVENTS events), recomputed in full on every pass (seconds per million
reports, see bench/correlate.py) and written as a diff. A campaign's id is the smallest
event id in it, so recomputing is idempotent and a growing campaign keeps its id; when two
merge, the younger id is kept with `merged_into` pointing at the survivor
(`resolve_campaign` follows it).

A reader is shown each group of a stored campaign's events that they see joined (a hidden
event may be what joins two groups), under the id of the group's smallest event: never an
id, a merge or a missing group that tells of an event they cannot see.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    distinct,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal, Share
from concord.bulk import Bulk
from concord.db import UTCDateTime, chunks, is_set, utcnow
from concord.errors import FaultLocation, InvalidInput, NotFound
from concord.events import warninglists
from concord.events.correlation_model import AlertMark, Campaign, CampaignEvent, CorrelationAlert
from concord.events.model import Event, EventObservable, Indicator, Sighting
from concord.events.service import check_network
from concord.intake.readers.values import canonical, network_value, search_forms
from concord.intake.records import CONTEXT_KINDS, ObservableKind
from concord.orgs.model import Organization, OrgKind

GRAPH_MAX_EVENTS = 500  # events drawn in one campaign graph; the rest is counted
# An indicator in more events than this (a mass scanner, shared hosting not on any list) is
# infrastructure, not the signature of one campaign: it stays cross-state and alerted, but
# does not join events into a campaign; otherwise a few such values glue everything together.
HUB_EVENTS = 1000
_PG_LOCK = 7_262_002  # advisory lock: one correlation pass at a time on PostgreSQL


@dataclass
class CampaignResult:
    campaigns: int = 0  # live campaigns
    created: int = 0
    merged: int = 0
    events: int = 0  # events in live campaigns

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class CorrelationResult:
    checked: int = 0  # indicators seen by 2+ states, not yet flagged nor warning-listed
    cross_state: int = 0  # newly cross-state
    warning_listed: int = 0  # newly found on a warning list
    alerts: int = 0  # new alert rows
    campaigns: CampaignResult | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checked": self.checked,
            "cross_state": self.cross_state,
            "warning_listed": self.warning_listed,
            "alerts": self.alerts,
        }
        if self.campaigns is not None:
            out["campaigns"] = self.campaigns.as_dict()
        return out

    def summary(self) -> str:
        text_ = (
            f"checked {self.checked}, cross-state +{self.cross_state}, "
            f"warning-listed +{self.warning_listed}, alerts +{self.alerts}"
        )
        if self.campaigns is not None:
            c = self.campaigns
            text_ += f"; campaigns {c.campaigns} (+{c.created}, merged {c.merged})"
        return text_


def _lock(session: Session) -> None:
    # SQLite serialises writers already (BEGIN IMMEDIATE); PostgreSQL needs a lock so that the
    # periodic and an on-demand pass never interleave their diffs.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})


# --- the correlation pass ---------------------------------------------------------------------


def correlate(
    session: Session, since: datetime | None = None, *, campaigns: bool = True
) -> CorrelationResult:
    """Flag indicators reported by two or more states, write alerts, update campaigns.

    `since` (timezone-aware) limits the pass to indicators with a sighting whose last_seen
    is at or after it: a quick look after an intake. Without it the whole table is checked,
    which also catches reports dated in the past; the periodic job does that."""
    _lock(session)
    result = CorrelationResult()
    s = Sighting.__table__
    i = Indicator.__table__
    multi = (
        select(s.c.indicator_id)
        .where(s.c.country.is_not(None))
        .group_by(s.c.indicator_id)
        .having(func.count(distinct(s.c.country)) >= 2)
    )
    touched = None
    if since is not None:
        touched = select(s.c.indicator_id).where(s.c.last_seen >= since)
        multi = multi.where(s.c.indicator_id.in_(touched))
    found = multi.subquery()
    stmt = (
        select(i.c.id, i.c.kind, i.c.value, i.c.cross_state, i.c.warning_list)
        .join(found, found.c.indicator_id == i.c.id)
        .where(i.c.kind.not_in(CONTEXT_KINDS))
    )
    if since is not None:
        # A quick pass looks at what no pass has judged yet. A full one judges every flag
        # again: a release may bring warning lists that list a value flagged before (or no
        # longer list one), and a flag left standing would go on alerting and joining.
        stmt = stmt.where(i.c.cross_state.is_(False), i.c.warning_list.is_(None))
    rows = session.execute(stmt).all()
    result.checked = len(rows)
    listed: list[tuple[str, int]] = []
    fresh: list[int] = []
    for ind_id, kind, value, flagged, on_list in rows:
        name = warninglists.match(kind, value)
        if name is None:
            if not flagged:
                fresh.append(ind_id)
        elif flagged or on_list != name[:100]:
            listed.append((name[:100], ind_id))
    Bulk(session).executemany(
        "UPDATE indicators SET warning_list = ?, cross_state = false WHERE id = ?", listed
    )
    for chunk in chunks(fresh):
        session.execute(
            i.update().where(i.c.id.in_(chunk)).values(cross_state=True, warning_list=None)
        )
    result.warning_listed = len(listed)
    result.cross_state = len(fresh)
    if touched is None:
        touched = _alerts_to_look_at(session, fresh)
    result.alerts = _write_alerts(session, touched)
    if campaigns:
        result.campaigns = update_campaigns(session)
    return result


# How often the alert pass looks at every cross-state indicator, not only those that new
# events and shares touched: for what else changes a view (a national body's state).
COMPLETE_ALERT_PASS = timedelta(days=1)
# Indicators newly cross-state that a pass names one by one; beyond, it looks at them all
# (cheaper than a long IN list, which SQLite also bounds).
FRESH_LISTED = 1000


def _alerts_to_look_at(session: Session, fresh: Sequence[int]) -> Any:
    """The indicators a full pass looks at for alerts owed (a SELECT of ids), or None for
    all of them: those newly cross-state, and those of events added or shared since the
    pass before the last (`AlertMark`). Moves the mark on."""
    eo = EventObservable.__table__
    sh = Share.__table__
    now = utcnow()
    newest_event = session.scalar(select(func.max(Event.id))) or 0
    newest_share = session.scalar(select(func.max(Share.id))) or 0
    mark = session.get(AlertMark, 1)
    if mark is None:  # the first pass looks at everything
        session.add(
            AlertMark(
                id=1,
                event_id=newest_event,
                event_id_before=newest_event,
                share_id=newest_share,
                share_id_before=newest_share,
                complete_at=now,
            )
        )
        return None
    since_event, since_share = mark.event_id_before, mark.share_id_before
    mark.event_id_before, mark.event_id = mark.event_id, newest_event
    mark.share_id_before, mark.share_id = mark.share_id, newest_share
    if mark.complete_at <= now - COMPLETE_ALERT_PASS or len(fresh) > FRESH_LISTED:
        mark.complete_at = now
        return None
    added = select(eo.c.indicator_id).where(eo.c.event_id > since_event)
    shared = (
        select(eo.c.indicator_id)
        .join(sh, and_(sh.c.object_kind == Event.object_kind, sh.c.object_id == eo.c.event_id))
        .where(sh.c.id > since_share)
    )
    flagged = select(Indicator.id).where(Indicator.id.in_(fresh or [-1]))
    return union(added, shared, flagged)


def _write_alerts(session: Session, touched: Any) -> int:
    """The alerts each recipient has not had yet: a national body's, once per cross-state
    indicator its state reported; the centre's, once per state involved. Each is written
    when the recipient's own view (`policy.organisation_view`) first shows the indicator in
    two or more states, one of them the alert's, so that its date and its place in the
    recipient's feed rest on nothing hidden from the recipient. One INSERT ... SELECT per
    recipient, narrowed to the indicators with an alert still to give."""
    recipients = session.execute(
        select(Organization.id, Organization.kind, Organization.parent_id, Organization.country)
        .where(Organization.kind.in_((OrgKind.CENTRE, OrgKind.NATIONAL_BODY)))
        .order_by(Organization.id)
    ).all()
    written = 0
    now = literal(utcnow(), UTCDateTime())
    for org_id, kind, parent_id, country in recipients:
        if kind == OrgKind.NATIONAL_BODY and not country:
            continue
        state = country if kind == OrgKind.NATIONAL_BODY else None
        written += _write_alerts_for(
            session, policy.organisation_view(org_id, kind, parent_id), state, touched, now
        )
    return written


def _write_alerts_for(
    session: Session, viewer: Principal, state: str | None, touched: Any, now: Any
) -> int:
    s = Sighting.__table__
    i = Indicator.__table__
    a = CorrelationAlert.__table__
    eo = EventObservable.__table__
    e = Event.__table__
    owed = ~exists().where(
        a.c.indicator_id == s.c.indicator_id,
        a.c.country == s.c.country,
        a.c.org_id == viewer.org_id,
    )
    # indicators with an alert still owed to this recipient (a state's, for a national body)
    pending = (
        select(s.c.indicator_id)
        .join(i, i.c.id == s.c.indicator_id)
        .where(is_set(i.c.cross_state), s.c.country.is_not(None), owed)
    )
    if state is not None:
        pending = pending.where(s.c.country == state)
    if touched is not None:
        pending = pending.where(s.c.indicator_id.in_(touched))
    seen = (
        select(eo.c.indicator_id.label("ind"), e.c.country.label("country"))
        .join(e, e.c.id == eo.c.event_id)
        .where(
            eo.c.indicator_id.in_(pending),
            e.c.country.is_not(None),
            policy.tlp_filter(viewer, Event),
        )
        .distinct()
        .subquery()
    )
    crossing = select(seen.c.ind).group_by(seen.c.ind).having(func.count() >= 2)
    missing = select(seen.c.ind, seen.c.country, literal(viewer.org_id), now).where(
        seen.c.ind.in_(crossing),
        ~exists().where(
            a.c.indicator_id == seen.c.ind,
            a.c.country == seen.c.country,
            a.c.org_id == viewer.org_id,
        ),
    )
    if state is not None:
        missing = missing.where(seen.c.country == state)
    done = session.execute(
        a.insert()
        .from_select(["indicator_id", "country", "org_id", "created_at"], missing)
        .execution_options(preserve_rowcount=True)  # not kept for INSERT otherwise
    )
    return max(done.rowcount or 0, 0)


# --- campaigns ---------------------------------------------------------------------------------


@dataclass
class _Components:
    member: dict[int, int] = field(default_factory=dict)  # event id -> campaign id
    size: Counter[int] = field(default_factory=Counter)
    indicators: Counter[int] = field(default_factory=Counter)
    label: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (degree, ind)


def _components(rows: Iterable[Any]) -> _Components:
    """Union-find over (event, indicator) edges. The root of a set is always its smallest
    event id, which becomes the campaign's id."""
    parent: dict[int, int] = {}
    anchor: dict[int, int] = {}  # indicator -> its first event
    degree: Counter[int] = Counter()

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for event_id, ind in rows:
        if event_id not in parent:
            parent[event_id] = event_id
        degree[ind] += 1
        first = anchor.get(ind)
        if first is None:
            anchor[ind] = event_id
            continue
        a, b = find(first), find(event_id)
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b
    out = _Components()
    for event_id in parent:
        out.size[find(event_id)] += 1
    for event_id in parent:
        root = find(event_id)
        if out.size[root] >= 2:
            out.member[event_id] = root
    for root in [r for r, n in out.size.items() if n < 2]:
        del out.size[root]
    for ind, event_id in anchor.items():
        root = find(event_id)
        if root not in out.size or ind < 0:  # a report joining its events, no indicator
            continue
        out.indicators[root] += 1
        best = out.label.get(root)
        # The label is the indicator most events share; the smallest id breaks ties.
        if best is None or (degree[ind], -ind) > (best[0], -best[1]):
            out.label[root] = (degree[ind], ind)
    return out


def _same_report_edges(
    session: Session, event_ids: set[int], names: dict[int, tuple[str, str]] | None = None
) -> Iterator[tuple[int, int]]:
    """Edges joining the events that one organisation reported in one report: a MISP event
    (its records share `event_uuid`) or a STIX report or grouping (`stix_report`). A report
    is one incident's information, so its events that correlate across states make one
    campaign, not one per attribute. Each such report is a node of negative id, which
    `_components` counts as no indicator; `names` receives each node's kind and id."""
    reports: dict[tuple[int | None, str, str], int] = {}
    members: dict[int, list[int]] = {}
    for chunk in chunks(sorted(event_ids)):
        rows = session.execute(
            select(Event.id, Event.origin_org_id, Event.extra).where(
                Event.id.in_(chunk),
                or_(*(Event.extra.contains(f'"{key}"') for key in _REPORT_KEYS)),
            )
        )
        for event_id, org_id, extra in rows:
            try:
                fields = orjson.loads(extra)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(fields, dict):
                continue
            for key, kind in _REPORT_KEYS.items():
                ident = fields.get(key)
                if isinstance(ident, str) and ident:
                    node = reports.setdefault((org_id, key, ident), -1 - len(reports))
                    if names is not None:
                        names[node] = (kind, ident)
                    members.setdefault(node, []).append(event_id)
                    break
    for node, events in members.items():
        # a feed packed as one report (a day's IoCs in one MISP event) is no incident: like
        # an indicator in very many events, it joins nothing
        if len(events) <= HUB_EVENTS:
            yield from ((event_id, node) for event_id in events)


# Where a record names the report it came in, and what that report is called on a page.
_REPORT_KEYS = {"event_uuid": "MISP event", "stix_report": "STIX report"}


def update_campaigns(session: Session) -> CampaignResult:
    """Recompute campaigns from the cross-state indicators and store the difference."""
    _lock(session)
    eo = EventObservable.__table__
    i = Indicator.__table__
    ce = CampaignEvent.__table__
    c = Campaign.__table__
    hubs = (
        select(eo.c.indicator_id)
        .join(i, i.c.id == eo.c.indicator_id)
        .where(is_set(i.c.cross_state))
        .group_by(eo.c.indicator_id)
        .having(func.count() > HUB_EVENTS)
    )
    edges = (
        select(eo.c.event_id, eo.c.indicator_id)
        .join(i, i.c.id == eo.c.indicator_id)
        .where(is_set(i.c.cross_state), eo.c.indicator_id.not_in(hubs))
        .execution_options(yield_per=50_000)
    )
    in_edges: set[int] = set()

    def tapped() -> Iterator[Any]:
        for row in session.execute(edges):  # streamed
            in_edges.add(row[0])
            yield row

    # chain runs the second generator once the first is spent: every edge event is known
    comp = _components(chain(tapped(), _same_report_edges(session, in_edges)))
    old: dict[int, int] = dict(session.execute(select(ce.c.event_id, ce.c.campaign_id)).all())
    existing: dict[int, int | None] = {}
    sizes: dict[int, int] = {}
    for cid, into, size in session.execute(select(c.c.id, c.c.merged_into, c.c.size)):
        existing[cid] = into
        sizes[cid] = size
    bulk = Bulk(session)
    now = utcnow()
    stamp = bulk.timestamp(now)
    live = set(comp.size)
    created = sorted(live - existing.keys())
    labels = indicator_values(session, [comp.label[r][1] for r in created])
    bulk.insert(
        "campaigns",
        (
            "id",
            "label",
            "label_indicator_id",
            "size",
            "indicator_count",
            "states",
            "created_at",
            "updated_at",
        ),
        [
            (
                r,
                labels.get(comp.label[r][1], "")[:500],
                comp.label[r][1],
                comp.size[r],
                comp.indicators[r],
                "",
                stamp,
                stamp,
            )
            for r in created
        ],
    )
    revived = [(r,) for r in live if r in existing and existing[r] is not None]
    bulk.executemany("UPDATE campaigns SET merged_into = NULL WHERE id = ?", revived)
    # Membership, as a diff.
    gone = [e for e in old if e not in comp.member]
    moved = [(r, e) for e, r in comp.member.items() if e in old and old[e] != r]
    added = [(e, r) for e, r in comp.member.items() if e not in old]
    for chunk in chunks(gone):
        session.execute(ce.delete().where(ce.c.event_id.in_(chunk)))
    bulk.executemany("UPDATE campaign_events SET campaign_id = ? WHERE event_id = ?", moved)
    bulk.insert("campaign_events", ("event_id", "campaign_id"), added)
    # Campaigns that are no longer a component of their own point at where most of their
    # events went; with none left anywhere they are dissolved (size 0, never listed).
    went: dict[int, Counter[int]] = {}
    for e, was in old.items():
        now_in = comp.member.get(e)
        if now_in is not None and now_in != was:
            went.setdefault(was, Counter())[now_in] += 1
    merges: list[tuple[int, str, int]] = []
    dissolved: list[tuple[str, int]] = []
    for cid, into in existing.items():
        if into is not None or cid in live:
            continue
        targets = went.get(cid)
        if targets:
            top = max(targets.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            merges.append((top, stamp, cid))
        elif sizes[cid]:
            dissolved.append((stamp, cid))
    bulk.executemany("UPDATE campaigns SET merged_into = ?, updated_at = ? WHERE id = ?", merges)
    bulk.executemany(
        "UPDATE campaigns SET size = 0, indicator_count = 0, updated_at = ? WHERE id = ?",
        dissolved,
    )
    _refresh_figures(session, comp, stamp)
    return CampaignResult(len(live), len(created), len(merges), len(comp.member))


def indicator_values(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Indicator values by id."""
    found: dict[int, str] = {}
    for chunk in chunks(list(ids)):
        found.update(
            session.execute(
                select(Indicator.id, Indicator.value).where(Indicator.id.in_(chunk))
            ).all()
        )
    return found


def _refresh_figures(session: Session, comp: _Components, stamp: Any) -> None:
    """Size, states, first and last seen from the member events; rewrite only what changed."""
    ce = CampaignEvent.__table__
    e = Event.__table__
    c = Campaign.__table__
    figures: dict[int, list[Any]] = {}  # id -> [size, states, first, last]
    for cid, country, n, first, last in session.execute(
        select(
            ce.c.campaign_id, e.c.country, func.count(), func.min(e.c.time), func.max(e.c.last_seen)
        )
        .join(e, e.c.id == ce.c.event_id)
        .group_by(ce.c.campaign_id, e.c.country)
    ):
        f = figures.setdefault(cid, [0, set(), first, last])
        f[0] += n
        if country:
            f[1].add(country)
        f[2] = min(f[2], first)
        f[3] = max(f[3], last)
    current = session.execute(
        select(
            c.c.id,
            c.c.label_indicator_id,
            c.c.size,
            c.c.indicator_count,
            c.c.states,
            c.c.first_seen,
            c.c.last_seen,
        ).where(c.c.merged_into.is_(None))
    ).all()
    changes: list[tuple[Any, ...]] = []
    for cid, label_ind, size, n_ind, states, first, last in current:
        f = figures.get(cid)
        if f is None or cid not in comp.size:
            continue
        ind = comp.label[cid][1]
        wanted = (ind, f[0], comp.indicators[cid], ",".join(sorted(f[1])), f[2], f[3])
        if wanted != (label_ind, size, n_ind, states, first, last):
            changes.append((cid, *wanted))
    if not changes:
        return
    labels = indicator_values(session, [ch[1] for ch in changes])
    bulk = Bulk(session)
    ts = bulk.timestamp
    bulk.executemany(
        "UPDATE campaigns SET label = ?, label_indicator_id = ?, size = ?, indicator_count = ?, "
        "states = ?, first_seen = ?, last_seen = ?, updated_at = ? WHERE id = ?",
        [
            (labels.get(ind, "")[:500], ind, n, k, st, ts(f), ts(la), stamp, cid)
            for cid, ind, n, k, st, f, la in changes
        ],
    )


def resolve_campaign(session: Session, campaign_id: int) -> int | None:
    """The live campaign a (possibly merged) campaign id stands for today, or None."""
    seen: set[int] = set()
    current: int | None = campaign_id
    while current is not None and current not in seen:
        seen.add(current)
        row = session.execute(
            select(Campaign.merged_into).where(Campaign.id == current)
        ).one_or_none()
        if row is None:
            return None
        if row[0] is None:
            return current
        current = row[0]
    return None


def campaign_of_events(session: Session, event_ids: Iterable[int]) -> dict[int, int]:
    """Which live campaign each event belongs to; events in none are left out.

    For cases: link the returned campaign ids. No access check here: pass only events the
    principal may see (a campaign is then shown to them through `visible_campaign`)."""
    wanted = list(dict.fromkeys(int(e) for e in event_ids))
    found: dict[int, int] = {}
    for chunk in chunks(wanted):
        found.update(
            session.execute(
                select(CampaignEvent.event_id, CampaignEvent.campaign_id).where(
                    CampaignEvent.event_id.in_(chunk)
                )
            ).all()
        )
    return found


def campaigns_of_indicators(
    session: Session, principal: Principal, indicator_ids: Sequence[int]
) -> dict[int, list[CampaignView]]:
    """For each indicator, the campaigns it joins as the principal sees them (those the
    campaigns page shows that principal, through this indicator)."""
    pairs = session.execute(
        select(EventObservable.indicator_id, CampaignEvent.campaign_id)
        .join(CampaignEvent, CampaignEvent.event_id == EventObservable.event_id)
        .join(Event, Event.id == EventObservable.event_id)
        .where(EventObservable.indicator_id.in_(list(indicator_ids)), _visible(principal))
        .distinct()
    ).all()
    wanted = {ind for ind, _cid in pairs}
    figures = campaign_figures(session, principal, sorted({cid for _ind, cid in pairs}))
    found: dict[int, list[CampaignView]] = {}
    for view_id in sorted(figures):
        view, part = figures[view_id]
        if len(view.states) < 2:
            continue
        for ind in sorted({i for _ev, i in part.edges if i in wanted}):
            found.setdefault(ind, []).append(view)
    return found


# --- reads, as one principal may see them -------------------------------------------------------


def _visible(principal: Principal) -> ColumnElement[bool]:
    return policy.tlp_filter(principal, Event)


def _org_slugs(session: Session, principal: Principal, ids: set[int | None]) -> dict[int, str]:
    """Slugs of the organisations the principal may see; an owner's name can be TLP:AMBER."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return dict(
        session.execute(
            select(Organization.id, Organization.slug).where(
                Organization.id.in_(wanted), policy.org_filter(principal)
            )
        ).all()
    )


@dataclass
class SightingView:
    country: str | None
    org: str | None  # None when the reporting organisation itself is not visible
    events: int
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass
class IndicatorView:
    id: int
    kind: str
    value: str
    cross_state: bool
    warning_list: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    states: list[str]
    sightings: list[SightingView]


def _indicator_views(
    session: Session, principal: Principal, indicators: Sequence[Indicator], by_value: bool
) -> list[IndicatorView]:
    if not indicators:
        return []
    eo = EventObservable.__table__
    ids = [ind.id for ind in indicators]
    linked: Any = select(eo.c.indicator_id.label("ind"), eo.c.event_id.label("ev")).where(
        eo.c.indicator_id.in_(ids)
    )
    if by_value:
        # Events found by their first observable too, for any writer that skipped the links.
        linked = union(
            linked,
            select(Indicator.id, Event.id)
            .join(Event, Event.primary_value == Indicator.value)
            .where(Indicator.id.in_(ids)),
        )
    pairs = linked.subquery()
    rows = session.execute(
        select(
            pairs.c.ind,
            Event.country,
            Event.origin_org_id,
            func.count(),
            func.sum(Event.count),
            func.min(Event.time),
            func.max(Event.last_seen),
        )
        .join(Event, Event.id == pairs.c.ev)
        .where(_visible(principal))
        .group_by(pairs.c.ind, Event.country, Event.origin_org_id)
    ).all()
    slugs = _org_slugs(session, principal, {r[2] for r in rows})
    per: dict[int, list[SightingView]] = {}
    for ind_id, country, org_id, n_events, total, first, last in rows:
        per.setdefault(ind_id, []).append(
            SightingView(
                country,
                slugs.get(org_id) if org_id else None,
                n_events,
                int(total or 0),
                first,
                last,
            )
        )
    out = []
    for ind in indicators:
        seen = per.get(ind.id)
        if not seen:
            continue  # no visible event: the indicator does not exist for this principal
        seen.sort(key=lambda v: (v.country or "", v.org or "", v.first_seen))
        states = sorted({v.country for v in seen if v.country})
        out.append(
            IndicatorView(
                ind.id,
                ind.kind,
                ind.value,
                bool(ind.cross_state) and len(states) >= 2,
                # Matched here, not read from the column: correlation fills that only for the
                # values seen in two states, so it would tell a reader of a hidden second one.
                warninglists.match(ind.kind, ind.value),
                min(v.first_seen for v in seen),
                max(v.last_seen for v in seen),
                states,
                seen,
            )
        )
    return out


def check_asked_value(value: str, kind: str | None) -> None:
    """A value a user asks for that is blank, or none of the kind asked for, is a mistake to
    tell, as an unknown kind is: an empty answer would read as "nobody reported it". (Values
    taken from stored events are looked up as they are: a reader may have kept one that the
    rules of today would write otherwise.)"""
    if not value.strip():
        raise InvalidInput("the value is blank", FaultLocation(field="value"))
    if not kind:
        check_network(value)  # 10.0.0.0/33 is a slip, as the event search says
        return
    known = ObservableKind(indicator_kind(kind))
    try:
        if known in (ObservableKind.IPV4_NET, ObservableKind.IPV6_NET):
            # read as lists write networks; a /32 or /128 is stored as the address it is
            found = network_value(value.strip()).kind
            if found is not known:
                raise ValueError(f"it is stored as an {found.value} indicator")
        else:
            canonical(known, value)
    except ValueError as exc:
        raise InvalidInput(
            f"{value.strip()[:100]!r} is no {known.value} value: {exc}",
            FaultLocation(field="value"),
        ) from None


def indicator_kind(kind: str) -> str:
    """A kind no indicator can have is a mistake to tell, not an empty page to show."""
    cleaned = kind.strip().lower()
    if cleaned not in set(ObservableKind):
        raise InvalidInput(
            f"unknown indicator kind {kind!r}; use one of {', '.join(ObservableKind)}",
            FaultLocation(field="kind"),
        )
    return cleaned


def find_indicators(
    session: Session, principal: Principal, value: str, kind: str | None = None
) -> list[IndicatorView]:
    """Indicators with this value (and kind), with the sightings the principal may see."""
    # Stored values are canonical; accept what users paste, too.
    stmt = select(Indicator).where(Indicator.value.in_(search_forms(value)))
    if kind:
        stmt = stmt.where(Indicator.kind == indicator_kind(kind))
    indicators = list(session.scalars(stmt.order_by(Indicator.id).limit(20)))
    return _indicator_views(session, principal, indicators, by_value=True)


def cross_state_indicators(
    session: Session,
    principal: Principal,
    after: int = 0,
    limit: int = 100,
    kind: str | None = None,
) -> list[IndicatorView]:
    """Cross-state indicators as the principal sees them (visible events of 2+ states)."""
    eo = EventObservable
    # Read from the flagged indicators, in the order of their index: grouped and ordered by
    # that same column, SQLite stops at the page's end instead of grouping them all first.
    stmt = (
        select(Indicator.id)
        .join(eo, eo.indicator_id == Indicator.id)
        .join(Event, Event.id == eo.event_id)
        .where(is_set(Indicator.cross_state), Indicator.id > after, _visible(principal))
        .group_by(Indicator.id)
        .having(func.count(distinct(Event.country)) >= 2)
        .order_by(Indicator.id)
        .limit(limit)
    )
    if kind:
        stmt = stmt.where(Indicator.kind == indicator_kind(kind))
    ids = list(session.scalars(stmt))
    if not ids:
        return []
    indicators = list(
        session.scalars(select(Indicator).where(Indicator.id.in_(ids)).order_by(Indicator.id))
    )
    return _indicator_views(session, principal, indicators, by_value=False)


def _seen_in_states(
    session: Session,
    principal: Principal,
    indicator_ids: set[int],
    seen: ColumnElement[bool] | None = None,
) -> set[int]:
    """Those of `indicator_ids` that the principal's visible events (`seen`: those events
    instead) show in two or more states: cross-state as they see it."""
    visible = _visible(principal) if seen is None else seen
    eo = EventObservable
    found: set[int] = set()
    for chunk in chunks(sorted(indicator_ids)):
        found.update(
            session.scalars(
                select(eo.indicator_id)
                .join(Event, Event.id == eo.event_id)
                .where(eo.indicator_id.in_(chunk), visible)
                .group_by(eo.indicator_id)
                .having(func.count(distinct(Event.country)) >= 2)
            )
        )
    return found


@dataclass
class CampaignView:
    id: int
    label: str
    size: int  # visible events
    indicators: int  # indicators cross-state as the caller sees them
    states: list[str]
    first_seen: datetime
    last_seen: datetime
    events: list[Event] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)  # (event id, indicator id)
    indicator_values: dict[int, tuple[str, str]] = field(default_factory=dict)
    # reports (a MISP event, a STIX report) joining events of one state, by node id (negative
    # in `edges`): their kind and id
    reports: dict[int, tuple[str, str]] = field(default_factory=dict)
    truncated: bool = False


@dataclass
class VisiblePart:
    """What one caller sees of a campaign: a group of its visible member events joined
    through indicators those events hold and the caller sees reported by two or more states,
    so that no link, count or node rests on an event the caller cannot see. A stored campaign
    may show as several, where a hidden event is what joins them."""

    campaign: int  # the stored campaign
    events: dict[int, tuple[str | None, datetime, datetime]] = field(default_factory=dict)
    edges: list[tuple[int, int]] = field(default_factory=list)  # (event, indicator or report)
    indicators: int = 0
    label: int | None = None  # the indicator most of the events share
    reports: dict[int, tuple[str, str]] = field(default_factory=dict)  # node -> (kind, id)


def _hubs_among(session: Session, ids: set[int]) -> set[int]:
    """Those of the indicators `ids` in more than HUB_EVENTS events, as update_campaigns
    counts them."""
    eo = EventObservable
    found: set[int] = set()
    for chunk in chunks(sorted(ids)):
        found.update(
            session.scalars(
                select(eo.indicator_id)
                .where(eo.indicator_id.in_(chunk))
                .group_by(eo.indicator_id)
                .having(func.count() > HUB_EVENTS)
            )
        )
    return found


def _visible_parts(
    session: Session,
    principal: Principal,
    ids: Sequence[int],
    seen: ColumnElement[bool] | None = None,
) -> dict[int, VisiblePart]:
    """The parts of these stored campaigns the principal sees (`seen`: made of those events
    instead), by their smallest event id."""
    visible = _visible(principal) if seen is None else seen
    ce = CampaignEvent
    members: dict[int, dict[int, tuple[str | None, datetime, datetime]]] = {}
    for cid, ev, country, first, last in session.execute(
        select(ce.campaign_id, Event.id, Event.country, Event.time, Event.last_seen)
        .join(Event, Event.id == ce.event_id)
        .where(ce.campaign_id.in_(ids), visible)
    ):
        members.setdefault(cid, {})[ev] = (country, first, last)
    held: list[tuple[int, int, int]] = [
        (cid, ev, ind)
        for cid, ev, ind in session.execute(
            select(ce.campaign_id, ce.event_id, EventObservable.indicator_id)
            .join(Event, Event.id == ce.event_id)
            .join(EventObservable, EventObservable.event_id == ce.event_id)
            .join(Indicator, Indicator.id == EventObservable.indicator_id)
            .where(ce.campaign_id.in_(ids), is_set(Indicator.cross_state), visible)
            .order_by(ce.event_id, EventObservable.indicator_id)
        )
    ]
    # A hub joins no stored campaign (update_campaigns), so it neither links nor names a
    # part of one here.
    hubs = _hubs_among(session, {ind for _cid, _ev, ind in held})
    held = [(cid, ev, ind) for cid, ev, ind in held if ind not in hubs]
    # Network-wide cross-state is not enough: an indicator whose other state's report the
    # caller cannot see would show that hidden report. Only indicators cross-state as the
    # caller sees them link, count and are drawn (the rule of cross_state_indicators).
    linking = _seen_in_states(session, principal, {ind for _cid, _ev, ind in held}, seen)
    edges: dict[int, list[tuple[int, int]]] = {}
    for cid, ev, ind in held:
        if ind in linking:
            edges.setdefault(cid, []).append((ev, ind))
    # The reports joining them, as stored campaigns are joined, between events so linked.
    campaign_of = {ev: cid for cid, pairs in edges.items() for ev, _ind in pairs}
    names: dict[int, tuple[str, str]] = {}
    for ev, node in _same_report_edges(session, set(campaign_of), names):
        edges[campaign_of[ev]].append((ev, node))
    parts: dict[int, VisiblePart] = {}
    for cid, pairs in edges.items():
        comp = _components(pairs)
        events = members.get(cid, {})
        for root in comp.size:  # the smallest event of its group, each one visible
            part = VisiblePart(
                cid,
                {ev: events[ev] for ev, r in comp.member.items() if r == root and ev in events},
                [(ev, ind) for ev, ind in pairs if comp.member.get(ev) == root],
                comp.indicators[root],
                comp.label[root][1] if root in comp.label else None,
            )
            part.reports = {ind: names[ind] for _ev, ind in part.edges if ind < 0}
            parts[root] = part
    return parts


def campaign_figures(
    session: Session,
    principal: Principal,
    ids: Sequence[int],
    seen: ColumnElement[bool] | None = None,
) -> dict[int, tuple[CampaignView, VisiblePart]]:
    """Figures of the campaigns the principal sees in these stored ones, by the id each is
    shown under (`VisiblePart`). `seen` narrows the events to those of a condition, such as
    what two principals both may see: the campaigns are then joined of those alone."""
    parts = _visible_parts(session, principal, ids, seen)
    values = indicator_values(session, [p.label for p in parts.values() if p.label])
    views: dict[int, tuple[CampaignView, VisiblePart]] = {}
    for cid, part in parts.items():
        rows = part.events.values()
        view = CampaignView(
            cid,
            values.get(part.label or -1, f"campaign {cid}"),
            len(part.events),
            part.indicators,
            sorted({country for country, _f, _l in rows if country}),
            min(first for _c, first, _l in rows),
            max(last for _c, _f, last in rows),
        )
        views[cid] = (view, part)
    return views


def visible_campaigns(
    session: Session, principal: Principal, after: int = 0, limit: int = 50
) -> list[CampaignView]:
    """Campaigns whose visible, visibly connected events come from two or more states, by
    id after `after`: a page of `limit` (see `campaign_page` for where the next starts)."""
    return campaign_page(session, principal, after, limit)[0]


CATCH_UP = 1000  # candidates whose figures are made at once on the way to a deep page


def campaign_page(
    session: Session, principal: Principal, after: int = 0, limit: int = 50
) -> tuple[list[CampaignView], int | None]:
    """`visible_campaigns`, and the id the next page starts after (None at the end).

    Campaigns are listed by the id they are shown under (their smallest event the caller
    sees), never by a stored campaign's, which may be a hidden event's. Stored campaigns are
    read by their smallest visible event: no part of one has a smaller id, so a part whose
    id is below the smallest of those not read yet is in its place. A candidate found in two
    states by SQL may not be connected across states as the caller sees it, so candidates
    are read until the page is full: a page is never short while more campaigns follow."""
    ce = CampaignEvent
    smallest = func.min(Event.id)
    candidates = (
        select(ce.campaign_id, smallest, func.count())
        .join(Event, Event.id == ce.event_id)
        .where(_visible(principal))
        .group_by(ce.campaign_id)
        # a part shown after `after` holds an event after it
        .having(func.count(distinct(Event.country)) >= 2, func.max(Event.id) > after)
        .order_by(smallest)
        # grouped once and read in steps: a page deep in the list costs one grouping, not
        # one per step (the grouping reads every campaign event the caller sees)
        .execution_options(yield_per=limit)
    )
    found: list[CampaignView] = []
    waiting: list[tuple[int, CampaignView]] = []  # a heap, by id shown
    pending: list[tuple[int, int, int]] = []  # candidates read, their figures not yet made

    def make_figures() -> None:
        ids = _parts_after(session, pending, after)
        pending.clear()
        if not ids:
            return
        for view_id, (view, _part) in campaign_figures(session, principal, ids).items():
            if view_id > after and len(view.states) >= 2:
                heapq.heappush(waiting, (view_id, view))

    result = session.execute(candidates)
    try:
        for rows in result.partitions():
            pending.extend(rows)  # type: ignore[arg-type]
            read_to = rows[-1][1]  # the smallest visible event of the last candidate read
            if read_to <= after and len(pending) < CATCH_UP:
                # Nothing read so far can be shown before the page's first campaign: the
                # figures of many candidates are made at once, and the page fills no sooner.
                continue
            make_figures()
            while waiting and waiting[0][0] <= read_to:
                found.append(heapq.heappop(waiting)[1])
                if len(found) == limit:
                    return found, found[-1].id
    finally:
        result.close()
    make_figures()
    while waiting:
        found.append(heapq.heappop(waiting)[1])
        if len(found) == limit:
            return found, found[-1].id
    return found, None


def _parts_after(session: Session, candidates: list[tuple[int, int, int]], after: int) -> list[int]:
    """Of these candidates (campaign, smallest visible event, visible events), those that
    may have a part shown after `after`. A campaign seen whole has one part, the whole,
    shown under its smallest event (as the reports count it): when that is not after
    `after`, it was on an earlier page, and its figures are not made again."""
    seen_before = {cid: n for cid, first, n in candidates if first <= after}
    sizes: dict[int, int] = {}
    for chunk in chunks(sorted(seen_before)):
        sizes.update(
            (cid, size)
            for cid, size in session.execute(
                select(Campaign.id, Campaign.size).where(Campaign.id.in_(chunk))
            )
        )
    return [cid for cid, first, n in candidates if first > after or sizes.get(cid) != n]


def visible_campaign(
    session: Session, principal: Principal, campaign_id: int, max_events: int = GRAPH_MAX_EVENTS
) -> CampaignView:
    """One campaign with its visible events and the graph joining them; NotFound unless they
    come from two or more states. It is found by any of its events: an id it was shown under
    before it grew or merged still leads to it."""
    found = campaign_holding(session, principal, campaign_id)
    if found is None:
        raise NotFound(f"no campaign {campaign_id}")
    view, part = found
    shown = _fair_share(part.events, max_events)
    view.events = []
    for chunk in chunks(shown):
        view.events.extend(session.scalars(select(Event).where(Event.id.in_(chunk))))
    view.events.sort(key=lambda e: (e.time, e.id))
    view.truncated = view.size > len(view.events)
    drawn = set(shown)
    view.edges = [(ev, ind) for ev, ind in part.edges if ev in drawn]
    view.reports = {ind: part.reports[ind] for _ev, ind in view.edges if ind < 0}
    wanted = sorted({ind for _ev, ind in view.edges if ind > 0})
    for chunk in chunks(wanted):
        for i, kind, value in session.execute(
            select(Indicator.id, Indicator.kind, Indicator.value).where(Indicator.id.in_(chunk))
        ):
            view.indicator_values[i] = (kind, value)
    return view


def campaign_holding(
    session: Session, principal: Principal, event_id: int
) -> tuple[CampaignView, VisiblePart] | None:
    """The campaign the principal sees holding this event (one they see) and events of two
    or more states, or None."""
    stored = campaign_of_events(session, [event_id]).get(event_id)
    if stored is None:
        return None
    for view, part in campaign_figures(session, principal, [stored]).values():
        if event_id in part.events:
            return (view, part) if len(view.states) >= 2 else None
    return None


def _fair_share(events: dict[int, tuple[str | None, datetime, datetime]], most: int) -> list[int]:
    """Up to `most` events, each state's earliest first and the states in turn: cut by time
    alone, a large campaign would show none of the state that joined it last."""
    by_state: dict[str | None, list[int]] = {}
    for ev in sorted(events, key=lambda ev: (events[ev][1], ev)):
        by_state.setdefault(events[ev][0], []).append(ev)
    queues = [iter(q) for _state, q in sorted(by_state.items(), key=lambda kv: kv[0] or "")]
    shown: list[int] = []
    while queues and len(shown) < most:
        for q in list(queues):
            ev = next(q, None)
            if ev is None:
                queues.remove(q)
            elif len(shown) < most:
                shown.append(ev)
    return shown


@dataclass
class AlertView:
    id: int
    created_at: datetime
    country: str
    indicator_id: int
    kind: str
    value: str
    states: list[str]


def latest_alerts(session: Session, principal: Principal, limit: int) -> list[AlertView]:
    """Each indicator once, at its latest alert, newest first. The centre gets one alert
    per state involved; a page shows the indicator, not each of them."""
    latest: dict[int, AlertView] = {}
    for alert in list_alerts(session, principal, 0, limit * 3, newest_first=True):
        latest.setdefault(alert.indicator_id, alert)
    return list(latest.values())[:limit]


def receives_alerts(principal: Principal) -> bool:
    """Alerts go to the analysts of the states (national bodies) and of the centre."""
    return not principal.anonymous and principal.org_kind in (OrgKind.CENTRE, OrgKind.NATIONAL_BODY)


def list_alerts(
    session: Session,
    principal: Principal,
    after: int = 0,
    limit: int = 50,
    *,
    newest_first: bool = False,
    before: int | None = None,
) -> list[AlertView]:
    """Correlation alerts for the principal's state (all states for the centre), newest
    last (a feed read with a cursor) or newest first (a page showing the latest), each only
    while the principal's visible events show the indicator in 2+ states."""
    stmt = _alerts_seen(session, principal)
    if stmt is None:
        return []
    a = CorrelationAlert
    stmt = stmt.where(a.id > after).order_by(a.id.desc() if newest_first else a.id).limit(limit)
    if before is not None:  # the page of older alerts, newest first
        stmt = stmt.where(a.id < before)
    rows = session.execute(stmt).all()
    views = _indicator_views(
        session,
        principal,
        list(
            session.scalars(
                select(Indicator).where(Indicator.id.in_({r[0].indicator_id for r in rows}))
            )
        ),
        by_value=False,
    )
    states = {v.id: v.states for v in views}
    return [
        AlertView(
            r[0].id,
            r[0].created_at,
            r[0].country,
            r[0].indicator_id,
            r[1],
            r[2],
            states.get(r[0].indicator_id, []),
        )
        for r in rows
    ]


def count_alerted(session: Session, principal: Principal, cap: int) -> int:
    """How many alerts the principal has (the rows of the alerts page), counted up to
    `cap` + 1: a tile says "cap+" beyond."""
    stmt = _alerts_seen(session, principal)
    if stmt is None:
        return 0
    rows = stmt.with_only_columns(CorrelationAlert.id).limit(cap + 1)
    return int(session.scalar(select(func.count()).select_from(rows.subquery())) or 0)


def _alerts_seen(session: Session, principal: Principal) -> Select[Any] | None:
    """The principal's alerts with their indicators, each only while the principal's visible
    events show the indicator in 2+ states; None when they receive none."""
    if not receives_alerts(principal):
        return None
    a = CorrelationAlert
    visible_states = (
        select(func.count(distinct(Event.country)))
        .select_from(EventObservable)
        .join(Event, Event.id == EventObservable.event_id)
        .where(EventObservable.indicator_id == a.indicator_id, _visible(principal))
        .scalar_subquery()
    )
    # The alert's own state must be one the reader sees report it: an alert to a state
    # whose only report is hidden (AMBER+STRICT, an owner's unshared AMBER) would name it.
    own_state_seen = (
        select(EventObservable.event_id)
        .join(Event, Event.id == EventObservable.event_id)
        .where(
            EventObservable.indicator_id == a.indicator_id,
            Event.country == a.country,
            _visible(principal),
        )
        .exists()
    )
    # The organisation's own alerts; the reader's view is checked again, as a user may see
    # less than the organisation did (a share withdrawn since, a narrower token).
    return (
        select(a, Indicator.kind, Indicator.value)
        .join(Indicator, Indicator.id == a.indicator_id)
        .where(
            a.org_id == principal.org_id,
            is_set(Indicator.cross_state),  # not one found on a warning list since
            visible_states >= 2,
            own_state_seen,
        )
    )
