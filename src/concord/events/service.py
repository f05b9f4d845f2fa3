"""Events: search through the access policy, the raw record behind an event, and sharing an
event with the organisations that need it."""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import Principal, Share
from concord.audit import service as audit
from concord.db import as_utc
from concord.errors import (
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    NotFound,
    field_value,
)
from concord.events.model import (
    Event,
    EventObservable,
    Indicator,
    Submission,
    SubmissionFile,
    SubmissionPart,
)
from concord.events.rsit import RSIT, TYPE_TO_CLASS
from concord.intake.readers.email import parse_message, part_at
from concord.intake.readers.values import WIDEST_PREFIX, ipv6_hex, search_forms
from concord.orgs import service as orgs
from concord.orgs import validate
from concord.orgs.model import Organization, OrgKind

RAW_LIMIT = 4096


@dataclass
class EventQuery:
    value: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    rsit_class: str | None = None
    rsit_type: str | None = None
    country: str | None = None
    owner: str | None = None  # owner organisation slug
    feed: str | None = None
    after_id: int = 0
    limit: int = 100
    submission_id: int | None = None
    # Newest first, by time: what a person reading a list wants (the API's feed is by id).
    # The page after one ends at (time, id) holds what comes before that event.
    newest_first: bool = False
    before: tuple[datetime, int] | None = None


_CALENDAR_DATE = re.compile(r"(?:\d{4}-\d{2}-\d{2}|\d{8})(?:[T ]|$)")
# "2024-03-10T23:30:00+01:00" sent unescaped in a query: the + arrives as a space
_ZONE_AS_SPACE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? \d{2}(?::?\d{2})?$")


def search_time(value: str, *, until: bool = False) -> datetime:
    """A bound of an event search's period (the API's and the search page's alike), in UTC.

    ISO 8601; a time without a zone is UTC. A search keeps what happened before `until`, so a
    bare day given as `until` stands for the start of the next one: "until 2024-03-10" keeps
    the 10th. A full time is taken as given. ValueError, naming the text, when it is no date
    or UTC cannot hold it."""
    text = value.strip()
    try:
        # a calendar date first: Python also reads week dates (2024-W10) and compact forms,
        # of which "until" would keep a single day without a word
        if not _CALENDAR_DATE.match(text):
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        if _ZONE_AS_SPACE.search(text):
            raise ValueError(
                f"invalid date {value!r}: a + in a web address reads as a space; write it %2B"
            ) from None
        raise ValueError(
            f"invalid date {value!r}; use YYYY-MM-DD or a time such as 2024-03-10T23:30:00Z"
        ) from None
    try:
        if until and _is_day(text):
            moment += timedelta(days=1)
        return as_utc(moment)
    except (ValueError, OverflowError):  # a zone or the day after pushes it past year 9999
        raise ValueError(f"the date {value!r} is out of range in UTC") from None


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_filters(
    session: Session, principal: Principal, q: EventQuery, faults: Faults | None = None
) -> int | None:
    """A filter no event can match is a mistake to tell, not an empty page to show.

    Every fault of the query is told at once, each at its place, after those its caller
    found reading it (`faults`): a rule across two filters only once both read. Returns the
    id of the owner asked for, if any, looked up here once (the search filters by it)."""
    faults = Faults() if faults is None else faults
    faults.check(lambda: _searched_value(q.value), None)
    faults.check(lambda: _known_class(q.rsit_class), None)
    faults.check(lambda: _known_type(q.rsit_type), None)
    if not {"class", "type"} & faults.fields:
        faults.check(lambda: _class_of_type(q.rsit_class, q.rsit_type), None)
    if q.country:  # as the states are named: ZZ names none
        faults.check(lambda: field_value(validate.country, q.country, "country"), None)
    faults.check(lambda: _period(q.since, q.until), None)
    owner = faults.check(lambda: _owner_id(session, principal, q.owner), None)
    faults.raise_any()
    return owner


def _known_class(rsit_class: str | None) -> None:
    if rsit_class and rsit_class not in RSIT:
        raise InvalidInput(
            f"unknown RSIT class {rsit_class!r}; use one of {', '.join(RSIT)}",
            FaultLocation(field="class"),
        )


def _known_type(rsit_type: str | None) -> None:
    if rsit_type and rsit_type not in TYPE_TO_CLASS:
        raise InvalidInput(
            f"unknown RSIT type {rsit_type!r}, such as phishing or brute-force",
            FaultLocation(field="type"),
        )


def _class_of_type(rsit_class: str | None, rsit_type: str | None) -> None:
    """Both known: an event's class is its type's (RSIT), so another pair can match nothing."""
    if rsit_class and rsit_type and TYPE_TO_CLASS[rsit_type] != rsit_class:
        raise InvalidInput(
            f"the RSIT type {rsit_type} is of the class {TYPE_TO_CLASS[rsit_type]}, "
            f"not {rsit_class}",
            FaultLocation(field="type"),
        )


def _searched_value(value: str | None) -> None:
    if value is not None and not value.strip():
        raise InvalidInput("the value is blank", FaultLocation(field="value"))
    if value:
        check_network(value)


def _period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise InvalidInput(
            "until must come after since: no event happened in between",
            FaultLocation(pointer="/query/until"),
        )


def _owner_id(session: Session, principal: Principal, slug: str | None) -> int | None:
    """Only among the organisations the principal may see: a hidden owner's slug is told
    exactly as a slug no organisation has (a typing slip, not an empty page)."""
    if not slug:
        return None
    slug = slug.strip().lower()
    owner = session.scalar(
        select(Organization.id).where(Organization.slug == slug, policy.org_filter(principal))
    )
    if owner is None:
        raise InvalidInput(
            f"no organisation {slug!r} among those you may see", FaultLocation(field="owner")
        )
    return owner


def check_network(value: str) -> None:
    """An address with a prefix that no network has (10.0.0.0/33) is a slip to tell: searched
    as text, it would match nothing."""
    text = value.strip()
    address, slash, prefix = text.partition("/")
    if not slash or not (prefix.isascii() and prefix.isdigit()):
        return  # no prefix length after the slash: a path, searched as typed
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return  # not an address: a URL, searched as typed
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(
            f"invalid IP network {text[:100]!r}: the prefix length is at most 32 for IPv4 and "
            "128 for IPv6",
            FaultLocation(field="value"),
        ) from None


def _searched_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address or a network searched for, as a network; an IPv4-mapped IPv6 one
    (::ffff:198.51.100.0/120) as the IPv4 network it is, as addresses are stored. None for
    anything else."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _network_within(value: str) -> ColumnElement[bool] | None:
    """For a network searched for, the indicators of the addresses in it; None for anything
    else. IPv6 addresses are one range of their hex key. IPv4 addresses, stored as text only,
    are ranges of the (value, kind) index, one per network on an octet boundary the search
    covers (at most 128: a /20 is sixteen /24s, "203.0.112." to "203.0.127.")."""
    network = _searched_network(value)
    if network is None or network.prefixlen == network.max_prefixlen:
        return None
    if isinstance(network, ipaddress.IPv6Network):
        return and_(
            Indicator.kind == "ipv6",
            Indicator.ipv6_hex.between(
                ipv6_hex(network.network_address), ipv6_hex(network.broadcast_address)
            ),
        )
    boundary = -(-max(network.prefixlen, 1) // 8) * 8  # the next octet boundary
    ranges = []
    for part in network.subnets(new_prefix=boundary):
        octets = str(part.network_address).split(".")[: boundary // 8]
        if boundary == 32:
            ranges.append(Indicator.value == ".".join(octets))
        else:
            low = ".".join(octets) + "."
            # "/" follows "." in byte order: [low, high) holds every address under low
            ranges.append(and_(Indicator.value >= low, Indicator.value < low[:-1] + "/"))
    return and_(Indicator.kind == "ipv4", or_(*ranges))


def _networks_holding(value: str) -> ColumnElement[bool] | None:
    """For an address or a network searched for, the network indicators that hold it (a DROP
    entry, a listed range), so that "is this address listed?" is answered: each network
    from the widest a list names down to the one just above it, by the (value, kind) index
    (24 for an IPv4 address, 112 for an IPv6 one). None for anything else."""
    network = _searched_network(value)
    if network is None:
        return None
    holders = [
        network.supernet(new_prefix=prefix).compressed
        for prefix in range(WIDEST_PREFIX[network.version], network.prefixlen)
    ]
    if not holders:
        return None
    kind = "ipv4-net" if network.version == 4 else "ipv6-net"
    return and_(Indicator.kind == kind, Indicator.value.in_(holders))


def shows_receipt(session: Session, principal: Principal, submission_id: int) -> bool:
    """Whether `principal` may open the receipt of this submission (one that exists)."""
    return (
        session.scalar(
            select(Submission.id).where(
                Submission.id == submission_id, policy.submission_filter(principal, Submission)
            )
        )
        is not None
    )


def search(
    session: Session, principal: Principal, q: EventQuery, faults: Faults | None = None
) -> list[Event]:
    """The events `principal` may see that match `q`; every fault of the query is told at
    once, with those its caller found reading it (see `check_filters`)."""
    owner = check_filters(session, principal, q, faults)
    stmt = select(Event).where(policy.tlp_filter(principal, Event))
    if q.after_id:  # only with a cursor: an `id > 0` leads SQLite to scan by id, not time
        stmt = stmt.where(Event.id > q.after_id)
    if q.value:
        forms = search_forms(q.value)
        found = [Indicator.value.in_(forms)]
        found += [
            near
            for near in (_network_within(q.value), _networks_holding(q.value))
            if near is not None
        ]
        linked = (
            select(EventObservable.event_id)
            .join(Indicator, Indicator.id == EventObservable.indicator_id)
            .where(or_(*found))
        )
        stmt = stmt.where(or_(Event.primary_value.in_(forms), Event.id.in_(linked)))
    if q.since:
        stmt = stmt.where(Event.time >= q.since)
    if q.until:
        stmt = stmt.where(Event.time < q.until)
    if q.rsit_class:
        stmt = stmt.where(Event.rsit_class == q.rsit_class)
    if q.rsit_type:
        stmt = stmt.where(Event.rsit_type == q.rsit_type)
    if q.country:
        stmt = stmt.where(Event.country == q.country.strip().upper())  # as check_filters reads it
    if q.feed:
        stmt = stmt.where(Event.feed == q.feed)
    if q.submission_id:
        stmt = stmt.where(submission_events(session, q.submission_id))
    if owner is not None:
        stmt = stmt.where(Event.owner_org_id == owner)
    if q.newest_first:
        if q.before is not None:
            time, event_id = q.before
            stmt = stmt.where(or_(Event.time < time, and_(Event.time == time, Event.id < event_id)))
        stmt = stmt.order_by(Event.time.desc(), Event.id.desc())
    else:
        stmt = stmt.order_by(Event.id)
    return list(session.scalars(stmt.limit(q.limit)))


def count_since(session: Session, principal: Principal, since: datetime, cap: int) -> int:
    """How many events the principal may see from `since` on, counted up to `cap` + 1 (a
    dashboard says "more than `cap`" rather than count millions on every visit)."""
    found = (
        select(Event.id)
        .where(policy.tlp_filter(principal, Event), Event.time >= since)
        .limit(cap + 1)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(found)) or 0


def submission_events(session: Session, submission_id: int) -> ColumnElement[bool]:
    """The events a submission first reported, by the range of ids each lies in: its own,
    and for a mail or an archive those of the files it held (its parts)."""
    parts = select(SubmissionPart.part_id).where(SubmissionPart.submission_id == submission_id)
    spans = session.execute(
        select(Submission.id, Submission.first_event_id, Submission.last_event_id).where(
            or_(Submission.id == submission_id, Submission.id.in_(parts)),
            Submission.first_event_id.is_not(None),
        )
    ).all()
    if not spans:
        return false()
    return or_(
        *(
            and_(Event.id.between(low, high), Event.submission_id == sub_id)
            for sub_id, low, high in spans
        )
    )


def extra_fields(event: Event) -> dict[str, Any]:
    """The event's extra fields; those of an event stored cut short (by an earlier
    release) come back as their text, rather than failing every list that shows it."""
    try:
        found = json.loads(event.extra or "{}")
    except ValueError:
        return {"unreadable": event.extra}
    return found if isinstance(found, dict) else {"value": found}


def get_event(session: Session, principal: Principal, event_id: int) -> Event:
    event = session.scalar(
        select(Event).where(Event.id == event_id, policy.tlp_filter(principal, Event))
    )
    if event is None:
        raise NotFound(f"no event {event_id}")
    return event


def observables(session: Session, event_ids: list[int]) -> dict[int, list[dict[str, str]]]:
    found: dict[int, list[dict[str, str]]] = {}
    if not event_ids:
        return found
    rows = session.execute(
        select(EventObservable.event_id, Indicator.kind, Indicator.value, EventObservable.role)
        .join(Indicator, Indicator.id == EventObservable.indicator_id)
        .where(EventObservable.event_id.in_(event_ids))
    )
    for event_id, kind, value, role in rows:
        found.setdefault(event_id, []).append({"kind": kind, "value": value, "role": role})
    return found


def org_slugs(session: Session, principal: Principal, ids: set[int | None]) -> dict[int, str]:
    """Slugs of those of `ids` that `principal` may see (an owner's very name can be
    TLP:AMBER); an organisation left out is shown as no one, not by its slug."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(
        session.execute(
            select(Organization.id, Organization.slug).where(
                Organization.id.in_(wanted), policy.org_filter(principal)
            )
        ).all()
    )


def share_event(session: Session, principal: Principal, event_id: int, org_slug: str) -> bool:
    """Let organisation `org_slug` read event `event_id` (TLP:AMBER or AMBER+STRICT): e.g.
    the owner of the resource it concerns, or another state's national body. False when it
    could read it already."""
    event = get_event(session, principal, event_id)
    try:
        policy.check_event_share(principal, event)
    except policy.AccessDenied as exc:
        raise Forbidden(str(exc)) from None
    if event.tlp in ("clear", "green"):
        raise InvalidInput(
            f"a TLP:{event.tlp.upper()} event is open to every organisation of the network already",
            FaultLocation(field="org"),
        )
    if event.tlp == "red":
        raise InvalidInput(
            "a TLP:RED event is for named people only, not for an organisation",
            FaultLocation(field="org"),
        )
    target = orgs.named_org(session, principal, org_slug.strip())
    if target.id == event.origin_org_id or (
        target.kind == OrgKind.CENTRE and policy.centre_reads(event.tlp)
    ):
        return False
    known = session.scalar(
        select(Share.id).where(
            Share.object_kind == Event.object_kind,
            Share.object_id == event.id,
            Share.org_id == target.id,
        )
    )
    if known is not None:
        return False
    session.add(Share(object_kind=Event.object_kind, object_id=event.id, org_id=target.id))
    audit.record(session, principal, "share", "event", event.id, {"with": target.slug})
    return True


def share_candidates(session: Session, principal: Principal, event: Event) -> list[Organization]:
    """Whom an event is most likely shared with, as choices: the owner of the resource it
    concerns, then the national bodies and, for AMBER+STRICT, the centre (which reads
    AMBER already). A network has thousands of owners, so any other organisation is named
    by its slug."""
    kinds = [OrgKind.NATIONAL_BODY] + ([] if policy.centre_reads(event.tlp) else [OrgKind.CENTRE])
    found = list(
        session.scalars(
            select(Organization)
            .where(
                policy.org_filter(principal),
                or_(Organization.id == event.owner_org_id, Organization.kind.in_(kinds)),
                Organization.id != event.origin_org_id,
            )
            .order_by(Organization.country, Organization.slug)
            .limit(500)
        )
    )
    found.sort(key=lambda o: o.id != event.owner_org_id)  # the owner first
    return found


def event_recipients(session: Session, principal: Principal, event_id: int) -> list[str]:
    """The organisations an event was shared with, by slug (shown to those who may share):
    those the principal sees; a share with its owner in another state names no one."""
    return list(
        session.scalars(
            select(Organization.slug)
            .where(
                Organization.id.in_(
                    select(Share.org_id).where(
                        Share.object_kind == Event.object_kind, Share.object_id == event_id
                    )
                ),
                policy.org_filter(principal),
            )
            .order_by(Organization.slug)
        )
    )


_LINE = re.compile(r"line (\d+)")
_POINTER = re.compile(r":(/[^:]*)$")
# A MIME location of the e-mail reader: IMAP section numbers ("/part/3.1"), then the JSON
# pointer of a report inside that part ("/part/2/0").
_MIME_POINTER = re.compile(r"^/part/(\d+(?:\.\d+)*)(/.*)?$")


def raw_record(session: Session, event: Event) -> str:
    """The exact source text behind an event: its line, JSON object or message part, bounded.

    Only the record's own bytes: one submission can hold records of different TLP (a mail
    whose attachment carries a GREEN and a RED report), so showing anything around the
    record could show another record to someone who may not read it. Where the record's
    own bytes cannot be isolated, the answer is empty: no raw text."""
    where = event.raw_location
    line = _LINE.search(where)
    parts = SubmissionFile.__table__
    if line:
        number = int(line.group(1))
        # Only the part holding that line is decompressed.
        found = session.execute(
            select(parts.c.content, parts.c.first_line)
            .where(parts.c.submission_id == event.submission_id, parts.c.first_line <= number)
            .order_by(parts.c.first_line.desc())
            .limit(1)
        ).first()
        if found is None:
            return ""
        lines = gzip.decompress(found[0]).split(b"\n")
        index = number - found[1]
        if 0 <= index < len(lines):
            return lines[index].decode("utf-8", "replace")[:RAW_LIMIT]
        return ""
    pointer = _POINTER.search(where)
    if pointer is None:
        return ""  # no location inside the submission: nothing is the record's alone
    data = b"".join(
        gzip.decompress(c)
        for c in session.scalars(
            select(parts.c.content)
            .where(parts.c.submission_id == event.submission_id)
            .order_by(parts.c.part)
        )
    )
    fmt = session.scalar(select(Submission.format).where(Submission.id == event.submission_id))
    # The e-mail reader takes bare X-ARF JSON too; only a message has MIME locations.
    if fmt == "email" and data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
        text = _mime_record(data, pointer.group(1))
    else:
        text = _json_record(data, pointer.group(1))
    return (text or "")[:RAW_LIMIT]


def _json_record(data: bytes, pointer: str) -> str | None:
    """The JSON value at `pointer` (RFC 6901) in `data`, indented; None if there is none."""
    try:
        node: Any = json.loads(data)
        for token in pointer.strip("/").split("/"):
            if token == "":
                continue
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return None
    return json.dumps(node, ensure_ascii=False, indent=1)


def _mime_record(data: bytes, pointer: str) -> str | None:
    """The text of the MIME part a mail location names, or of the JSON value inside it
    ("/part/2/0": report 0 of the document in part 2); None if it cannot be found."""
    if pointer == "/":
        return data.decode("utf-8", "replace")  # the record is the whole message
    found = _MIME_POINTER.match(pointer)
    if found is None:
        return None
    try:
        part = part_at(parse_message(data), found.group(1))
        if part is None:
            return None
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):  # a message/* part: its own headers and body
            content = part.as_bytes()
    except Exception:  # the stdlib parser has bugs of its own on hostile input
        return None
    if found.group(2):
        return _json_record(content, found.group(2))
    try:
        return content.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset no codec is named after
        return content.decode("utf-8", "replace")
