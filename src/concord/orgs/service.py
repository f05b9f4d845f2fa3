"""Operations on organisations, contacts and assets: the only code that writes them."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access.model import TLP, Principal, Role, Share
from concord.audit import service as audit
from concord.db import contains_pattern, utcnow
from concord.errors import (
    Conflict,
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    NotFound,
    field_value,
    given_value,
)
from concord.orgs import validate
from concord.orgs.model import Asset, AssetKind, AssetRevision, Contact, Organization, OrgKind
from concord.orgs.readers import AssetRow, RowError

INSERT_BATCH = 2000


def _denied(exc: policy.AccessDenied) -> Forbidden:
    return Forbidden(str(exc))


# --- organisations -------------------------------------------------------------------------


def default_tlp(kind: OrgKind) -> TLP:
    # The directory of the centre and national bodies is public; constituents are not.
    return TLP.CLEAR if kind in (OrgKind.CENTRE, OrgKind.NATIONAL_BODY) else TLP.AMBER


def get_org(session: Session, principal: Principal, slug: str) -> Organization:
    org = session.scalar(
        select(Organization).where(Organization.slug == slug, policy.org_filter(principal))
    )
    if org is None:
        raise NotFound(f"no organisation {slug!r}")
    return org


def find_org(
    session: Session, slug: str, principal: Principal | None = None
) -> Organization | None:
    """The organisation named `slug`; for a principal, only among those it sees, so that
    one it does not see answers as an unknown one does (the console sees them all)."""
    named = select(Organization).where(Organization.slug == slug)
    if principal is not None:
        named = named.where(policy.org_filter(principal))
    return session.scalar(named)


def named_org(
    session: Session, principal: Principal | None, slug: str, field: str = "org"
) -> Organization:
    """The organisation a request names in its body (to share with, to take part): an
    unknown one, or one the principal does not see, is a fault of that field (422), not a
    missing resource (404)."""
    org = find_org(session, slug, principal)
    if org is None:
        raise InvalidInput(f"no organisation {slug!r}", FaultLocation(field=field))
    return org


def get_org_for_write(
    session: Session, slug: str, principal: Principal | None = None
) -> Organization:
    org = find_org(session, slug, principal)
    if org is None:
        raise NotFound(f"no organisation {slug!r}")
    return org


def list_orgs(
    session: Session,
    principal: Principal,
    *,
    kind: str | None = None,
    country: str | None = None,
    parent: str | None = None,
    q: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Organization]:
    stmt = select(Organization).where(policy.org_filter(principal), Organization.id > after_id)
    # a filter nothing can match is a mistake to tell, not an empty page to show; all at once
    faults = Faults()
    if kind:
        kind = faults.check(lambda: field_value(validate.org_kind, kind, "kind"), None)
        stmt = stmt.where(Organization.kind == kind)
    if country:
        country = faults.check(lambda: field_value(validate.country, country, "country"), None)
        stmt = stmt.where(Organization.country == country)
    faults.raise_any()
    if parent:
        parent_ids = select(Organization.id).where(Organization.slug == parent)
        stmt = stmt.where(Organization.parent_id.in_(parent_ids))
    if q:
        like = contains_pattern(q)
        stmt = stmt.where(
            func.lower(Organization.name_en).like(like, escape="\\")
            | func.lower(Organization.name_ru).like(like, escape="\\")
            | Organization.slug.like(like, escape="\\")
        )
    return list(session.scalars(stmt.order_by(Organization.id).limit(limit)))


def managed_orgs(session: Session, principal: Principal, *, limit: int) -> list[Organization]:
    """The organisations in the principal's scope (whose users and data it manages), the
    centre and national bodies first, then by name."""
    staff_first = case((Organization.kind.in_((OrgKind.CENTRE, OrgKind.NATIONAL_BODY)), 0), else_=1)
    stmt = (
        select(Organization)
        .where(policy.scope_filter(principal, Organization.id))
        .order_by(staff_first, Organization.name_en, Organization.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def parent_slugs(session: Session, orgs: Iterable[Organization]) -> dict[int, str]:
    ids = {o.parent_id for o in orgs if o.parent_id}
    if not ids:
        return {}
    rows = session.execute(
        select(Organization.id, Organization.slug).where(Organization.id.in_(ids))
    )
    return {i: s for i, s in rows}


@dataclass
class OrgInput:
    slug: str
    kind: str
    name_en: str
    name_ru: str = ""
    country: str | None = None
    sector: str | None = None
    language: str = "en"
    parent: str | None = None
    tlp: str | None = None


def create_org(session: Session, principal: Principal | None, data: OrgInput) -> Organization:
    faults = Faults()  # every field's fault told at once, not one per attempt
    slug = faults.check(lambda: field_value(validate.slug, data.slug, "slug"), "")
    kind = faults.check(lambda: field_value(validate.org_kind, data.kind, "kind"), None)
    name_en = faults.check(lambda: _required(data.name_en, "name_en", "the English name"), "")
    country = faults.check(
        lambda: given_value(validate.country, data.country, "country"),
        None,
    )
    language = faults.check(
        lambda: field_value(validate.language, data.language or "en", "language"), "en"
    )
    parent = faults.check(lambda: _parent_named(session, principal, data.parent), None)
    given_tlp = faults.check(lambda: given_value(TLP.parse, data.tlp, "tlp"), None)
    if kind is not None and "parent" not in faults.fields:
        faults.check(lambda: _check_parent(kind, parent), None)
        if kind in (OrgKind.OWNER,) and country is None and parent is not None:
            country = parent.country
        if not faults.fields & {"country", "parent"}:
            faults.check(lambda: _check_country_of_constituent(parent, country), None)
        if kind == OrgKind.NATIONAL_BODY and country is None and "country" not in faults.fields:
            faults.check(_national_body_country, None)
        if not faults.fields & {"country", "parent"}:
            # What the caller may not do, or what the network holds already, is said first,
            # whatever else the input gets wrong.
            parent = _check_org_place(session, principal, kind, parent, country)
    faults.raise_any()
    assert kind is not None  # a fault otherwise
    tlp = given_tlp or default_tlp(kind)
    if session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise Conflict(f"an organisation with slug {slug!r} exists already")
    org = Organization(
        slug=slug,
        kind=kind.value,
        name_en=name_en,
        name_ru=data.name_ru.strip(),
        country=country,
        sector=(data.sector or "").strip() or None,
        language=language,
        parent_id=parent.id if parent else None,
        tlp=tlp.value,
        origin_org_id=principal.org_id if principal else None,
        origin_user_id=principal.user_id if principal else None,
    )
    session.add(org)
    session.flush()
    if kind == OrgKind.CENTRE:  # national bodies added before the centre answer to it now
        session.execute(
            update(Organization)
            .where(Organization.kind == OrgKind.NATIONAL_BODY, Organization.parent_id.is_(None))
            .values(parent_id=org.id)
        )
    if parent is not None:
        # The national body always receives what its constituents' record says.
        session.add(Share(object_kind=Organization.object_kind, object_id=org.id, org_id=parent.id))
    audit.record(
        session,
        principal,
        "create",
        "organization",
        org.slug,
        {"kind": org.kind, "country": org.country, "tlp": org.tlp},
    )
    return org


ORG_EDITABLE = ("name_en", "name_ru", "country", "sector", "language", "tlp")


def _check_org_place(
    session: Session,
    principal: Principal | None,
    kind: OrgKind,
    parent: Organization | None,
    country: str | None,
) -> Organization | None:
    """Whether the network has room for the organisation and the caller may add it there;
    its parent, the centre for a national body that names none."""
    centre = session.scalar(select(Organization).where(Organization.kind == OrgKind.CENTRE))
    if kind == OrgKind.CENTRE and centre is not None:
        raise Conflict(f"the network has its centre already: {centre.slug}")
    if kind == OrgKind.NATIONAL_BODY:
        _check_one_national_body(session, country)
        # A state's national body answers to the centre: its record is the centre's to keep.
        parent = parent or centre
    if principal is not None:
        try:
            policy.check_org_create(principal, kind, parent)
        except policy.AccessDenied as exc:
            raise _denied(exc) from None
    return parent


def _required(text: str, field: str, what: str) -> str:
    if not text.strip():
        raise InvalidInput(f"{what} is required", FaultLocation(field=field))
    return text.strip()


def _parent_named(
    session: Session, principal: Principal | None, slug: str | None
) -> Organization | None:
    if not slug:
        return None
    parent = find_org(session, slug, principal)
    if parent is None:
        raise InvalidInput(f"no parent organisation {slug!r}", FaultLocation(field="parent"))
    return parent


def _check_parent(kind: OrgKind, parent: Organization | None) -> None:
    if kind in (OrgKind.OWNER,) and parent is None:
        raise InvalidInput(
            "an owner needs its national body as parent", FaultLocation(field="parent")
        )
    if (
        parent is not None
        and kind in (OrgKind.OWNER, OrgKind.PARTNER)
        and parent.kind not in (OrgKind.NATIONAL_BODY, OrgKind.CENTRE)
    ):
        raise InvalidInput(
            "the parent of an owner must be a national body or the centre",
            FaultLocation(field="parent"),
        )


def _national_body_country() -> None:
    raise InvalidInput("a national body needs its country", FaultLocation(field="country"))


def _check_country_of_constituent(parent: Organization | None, country: str | None) -> None:
    """A national body's constituents are in its state: an owner under KZ's CERT is in KZ."""
    if parent is None or parent.kind != OrgKind.NATIONAL_BODY or country is None:
        return
    if country != parent.country:
        raise InvalidInput(
            f"an organisation under {parent.slug} is in {parent.country}, not {country}",
            FaultLocation(field="country"),
        )


def _check_country_change(
    session: Session, principal: Principal, org: Organization, country: str | None
) -> None:
    """A national body's country decides which state's reports, alerts and events it reads:
    only the centre moves it, and never onto a state that has a national body already."""
    if org.kind not in (OrgKind.NATIONAL_BODY, OrgKind.CENTRE):
        return
    if not principal.is_centre:
        raise Forbidden(f"only the centre changes the country of {org.slug}")
    if org.kind == OrgKind.NATIONAL_BODY:
        _check_one_national_body(session, country, besides=org.id)


def _check_one_national_body(session: Session, country: str | None, besides: int = 0) -> None:
    holder = session.scalar(
        select(Organization.slug).where(
            Organization.kind == OrgKind.NATIONAL_BODY,
            Organization.country == country,
            Organization.id != besides,
        )
    )
    if holder is not None:
        raise Conflict(f"{country} has a national body already: {holder}")


def update_org(
    session: Session, principal: Principal, slug: str, changes: dict[str, Any]
) -> Organization:
    org = get_org(session, principal, slug)
    try:
        policy.check_org_edit(principal, org)
    except policy.AccessDenied as exc:
        raise _denied(exc) from None
    faults = Faults()  # every field's fault told at once, not one per attempt
    checked = {
        key: faults.check(
            lambda key=key, value=value: _org_change(session, principal, org, key, value), None
        )
        for key, value in changes.items()
        if key in ORG_EDITABLE and value is not None
    }
    faults.raise_any()
    applied: dict[str, Any] = {}
    for key, value in checked.items():
        if getattr(org, key) != value:
            setattr(org, key, value)
            applied[key] = value
    if applied:
        audit.record(session, principal, "update", "organization", org.slug, applied)
    return org


def _org_change(
    session: Session, principal: Principal, org: Organization, key: str, value: Any
) -> Any:
    """One field's new value as stored, checked."""
    if key == "country":
        value = field_value(validate.country, value, "country")
        if value != org.country:
            _check_country_change(session, principal, org, value)
        parent = session.get(Organization, org.parent_id) if org.parent_id else None
        _check_country_of_constituent(parent, value)
    elif key == "language":
        value = field_value(validate.language, value, "language")
    elif key == "tlp":
        value = field_value(TLP.parse, value, "tlp").value
    elif key == "name_en":
        _required(str(value), "name_en", "the English name")
    return value


def share_org(session: Session, principal: Principal, slug: str, with_slug: str) -> None:
    org = get_org(session, principal, slug)
    try:
        policy.check_org_edit(principal, org)
    except policy.AccessDenied as exc:
        raise _denied(exc) from None
    target = named_org(session, principal, with_slug)
    exists = session.scalar(
        select(Share.id).where(
            Share.object_kind == Organization.object_kind,
            Share.object_id == org.id,
            Share.org_id == target.id,
        )
    )
    if exists is None:
        session.add(Share(object_kind=Organization.object_kind, object_id=org.id, org_id=target.id))
        audit.record(session, principal, "share", "organization", org.slug, {"with": target.slug})


def slug_in_scope(
    session: Session, principal: Principal, slug: str | None, faults: Faults
) -> str | None:
    """A list's organisation filter, as read (or None when not given): it names one in the
    principal's scope, or its fault joins the list's others in `faults`."""
    if not slug:
        return None
    slug = slug.strip().lower()
    faults.check(lambda: _check_in_scope(session, principal, slug), None)
    return slug


def _check_in_scope(session: Session, principal: Principal, slug: str) -> None:
    """A list's organisation filter names one in the principal's scope; one out of it is
    told as one that does not exist (the same words), rather than answered empty."""
    found = session.scalar(
        select(Organization.id).where(
            Organization.slug == slug, policy.scope_filter(principal, Organization.id)
        )
    )
    if found is None:
        raise InvalidInput(
            f"no organisation {slug!r} within your scope", FaultLocation(field="org")
        )


def scoped_with_org_slug(
    principal: Principal, model: Any, org_slug: str | None, after_id: int
) -> Select[Any]:
    """Rows of an organisation-owned table inside the principal's scope, each with its
    organisation's slug, for keyset pagination by id."""
    stmt = (
        select(model, Organization.slug)
        .join(Organization, Organization.id == model.org_id)
        .where(policy.scope_filter(principal, model.org_id), model.id > after_id)
    )
    if org_slug:
        stmt = stmt.where(Organization.slug == org_slug)
    return stmt


# --- contacts ------------------------------------------------------------------------------


@dataclass
class ContactInput:
    name: str
    email: str
    phone: str | None = None
    role: str = "security"
    language: str = "en"
    pgp_key: str | None = None


def list_contacts(
    session: Session,
    principal: Principal,
    *,
    org_slug: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[tuple[Contact, str]]:
    faults = Faults()
    org_slug = slug_in_scope(session, principal, org_slug, faults)
    faults.raise_any()
    stmt = scoped_with_org_slug(principal, Contact, org_slug, after_id)
    return [(c, s) for c, s in session.execute(stmt.order_by(Contact.id).limit(limit))]


def add_contact(
    session: Session, principal: Principal | None, org_slug: str, data: ContactInput
) -> Contact:
    org = get_org_for_write(session, org_slug, principal)
    if principal is not None:
        try:
            policy.check_org_data_write(principal, org)
        except policy.AccessDenied as exc:
            raise _denied(exc) from None
    faults = Faults()  # every field's fault told at once, not one per attempt
    name = faults.check(lambda: _required(data.name, "name", "the contact's name"), "")
    email = faults.check(lambda: field_value(validate.email, data.email, "email"), "")
    phone = faults.check(lambda: given_value(validate.phone, data.phone, "phone"), None)
    language = faults.check(
        lambda: field_value(validate.language, data.language or "en", "language"), "en"
    )
    pgp_key = faults.check(
        lambda: given_value(validate.pgp_key, data.pgp_key, "pgp_key"),
        None,
    )
    faults.raise_any()
    contact = Contact(
        org_id=org.id,
        name=name,
        email=email,
        phone=phone,
        role=(data.role or "security").strip()[:60],
        language=language,
        pgp_key=pgp_key,
    )
    if session.scalar(select(Contact.id).where(Contact.org_id == org.id, Contact.email == email)):
        raise Conflict(f"{org.slug} has a contact with e-mail {email} already")
    session.add(contact)
    session.flush()
    audit.record(
        session, principal, "create", "contact", contact.id, {"org": org.slug, "email": email}
    )
    return contact


def delete_contact(session: Session, principal: Principal, contact_id: int) -> None:
    contact = session.get(Contact, contact_id)
    org = session.get(Organization, contact.org_id) if contact else None
    if contact is None or org is None or not policy.in_scope(principal, org):
        raise NotFound(f"no contact {contact_id}")
    try:
        policy.check_org_data_write(principal, org)
    except policy.AccessDenied as exc:
        raise _denied(exc) from None
    session.delete(contact)
    audit.record(session, principal, "delete", "contact", contact_id, {"org": org.slug})


# --- assets --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    refused: list[RowError] = field(default_factory=list)
    imported: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "refused": [e.as_dict() for e in self.refused],
            "imported": self.imported,
        }


def bump_revision(session: Session) -> None:
    # A random value rather than +1: a rolled-back bump can then never be reused by the next
    # one, so an index cached from uncommitted rows is never mistaken for current.
    value = secrets.randbits(62)
    updated = session.execute(
        update(AssetRevision).where(AssetRevision.id == 1).values(revision=value)
    )
    if updated.rowcount == 0:
        session.add(AssetRevision(id=1, revision=value))
        session.flush()


def asset_revision(session: Session) -> int:
    return session.scalar(select(AssetRevision.revision).where(AssetRevision.id == 1)) or 0


def _held_elsewhere(
    session: Session, org_id: int, row: AssetRow, outside: ColumnElement[bool] | None = None
) -> bool:
    """Whether another organisation (one matching `outside`, if given) holds an address, AS
    or domain that `row` covers or lies in."""
    others = select(Asset.id).where(Asset.org_id != org_id, Asset.kind == row.kind.value)
    if outside is not None:
        others = others.where(outside)
    if row.range_start is not None and row.range_end is not None:
        # zero-padded decimal text: text order is numeric order
        overlap = others.where(
            Asset.range_start <= row.range_end, Asset.range_end >= row.range_start
        )
    elif row.kind in (AssetKind.DOMAIN, AssetKind.EMAIL_DOMAIN):
        labels = row.value.split(".")
        parents = [".".join(labels[i:]) for i in range(len(labels))]
        overlap = others.where(
            or_(Asset.value.in_(parents), Asset.value.endswith(f".{row.value}", autoescape=True))
        )
    elif row.kind == AssetKind.ASN:
        overlap = others.where(Asset.value == row.value)
    else:
        return False  # software: many organisations run the same
    return session.scalar(overlap.limit(1)) is not None


def _file_order(error: RowError) -> tuple[int, int]:
    tail = (error.location.pointer or "").rsplit("/", 1)[-1]
    return error.location.line or 0, int(tail) if tail.isdigit() else 0


def import_assets(
    session: Session,
    principal: Principal | None,
    org_slug: str,
    rows: Iterable[AssetRow | RowError],
    *,
    valid_only: bool = False,
    progress: Any = None,
) -> ImportReport:
    """Import assets in batches. A file with refused rows imports nothing unless
    `valid_only`; importing the same file twice changes nothing."""
    org = get_org_for_write(session, org_slug, principal)
    if principal is not None:
        try:
            policy.check_org_data_write(principal, org)
        except policy.AccessDenied as exc:
            raise _denied(exc) from None
    if org.kind not in (OrgKind.OWNER, OrgKind.PARTNER, OrgKind.NATIONAL_BODY, OrgKind.CENTRE):
        raise InvalidInput(f"{org.slug} cannot hold assets")

    report = ImportReport()
    wanted: dict[tuple[str, str, str], AssetRow] = {}
    for item in rows:
        if isinstance(item, RowError):
            report.refused.append(item)
        elif item.key in wanted:
            prior = wanted[item.key]
            report.refused.append(RowError(item.location, f"duplicate of {prior.location}"))
        else:
            wanted[item.key] = item
        if progress is not None:
            progress(1)
    if principal is not None and not principal.is_centre:
        # Ownership decides who is notified of, and who reads, the events about a resource:
        # an owner's contact declares only its own resources, and a national body records
        # overlaps only among its own constituents, never over another state's.
        outside = (
            None
            if principal.role == Role.OWNER_CONTACT
            else not_(policy.scope_filter(principal, Asset.org_id))
        )
        recorder = "your national body" if outside is None else "the centre"
        for key, row in list(wanted.items()):
            if _held_elsewhere(session, org.id, row, outside):
                del wanted[key]
                report.refused.append(
                    RowError(
                        row.location,
                        f"{row.value} overlaps what another organisation holds; "
                        f"ask {recorder} to record it",
                    )
                )
    # in file order: reading refuses rows as it goes, the overlap check after it
    report.refused.sort(key=_file_order)
    if report.refused and not valid_only:
        report.imported = False
        return report

    existing = {
        (k, v, ver): (i, d)
        for i, k, v, ver, d in session.execute(
            select(Asset.id, Asset.kind, Asset.value, Asset.version, Asset.description).where(
                Asset.org_id == org.id
            )
        )
    }
    now = utcnow()
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for key, row in wanted.items():
        current = existing.get(key)
        if current is None:
            new_rows.append(
                {
                    "org_id": org.id,
                    "kind": row.kind.value,
                    "value": row.value,
                    "version": row.version,
                    "description": row.description,
                    "range_start": row.range_start,
                    "range_end": row.range_end,
                    "asn": row.asn,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif current[1] != row.description:
            changed_rows.append(
                {"b_id": current[0], "b_description": row.description, "b_now": now}
            )
        else:
            report.unchanged += 1
    for start in range(0, len(new_rows), INSERT_BATCH):
        session.execute(insert(Asset), new_rows[start : start + INSERT_BATCH])
    if changed_rows:
        from sqlalchemy import bindparam

        session.execute(
            update(Asset.__table__)
            .where(Asset.__table__.c.id == bindparam("b_id"))
            .values(description=bindparam("b_description"), updated_at=bindparam("b_now")),
            changed_rows,
        )
    report.added = len(new_rows)
    report.changed = len(changed_rows)
    if report.added or report.changed:
        bump_revision(session)
        audit.record(
            session,
            principal,
            "import",
            "asset",
            org.slug,
            {"added": report.added, "changed": report.changed, "refused": len(report.refused)},
        )
    return report


def list_assets(
    session: Session,
    principal: Principal,
    *,
    org_slug: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[tuple[Asset, str]]:
    faults = Faults()  # a filter nothing can match is told, every one at once
    org_slug = slug_in_scope(session, principal, org_slug, faults)
    if kind:
        faults.check(lambda: _known_asset_kind(kind), None)
    faults.raise_any()
    stmt = scoped_with_org_slug(principal, Asset, org_slug, after_id)
    if kind:
        stmt = stmt.where(Asset.kind == kind.strip().lower())
    if q:
        stmt = stmt.where(func.lower(Asset.value).like(contains_pattern(q), escape="\\"))
    return [(a, s) for a, s in session.execute(stmt.order_by(Asset.id).limit(limit))]


def _known_asset_kind(kind: str) -> None:
    if kind.strip().lower() not in set(AssetKind):
        raise InvalidInput(
            f"unknown asset kind {kind!r}; use one of {', '.join(AssetKind)}",
            FaultLocation(field="kind"),
        )


def delete_asset(session: Session, principal: Principal, asset_id: int) -> None:
    asset = session.get(Asset, asset_id)
    org = session.get(Organization, asset.org_id) if asset else None
    if asset is None or org is None or not policy.in_scope(principal, org):
        raise NotFound(f"no asset {asset_id}")
    try:
        policy.check_org_data_write(principal, org)
    except policy.AccessDenied as exc:
        raise _denied(exc) from None
    session.execute(delete(Asset).where(Asset.id == asset_id))
    bump_revision(session)
    audit.record(
        session, principal, "delete", "asset", asset_id, {"org": org.slug, "value": asset.value}
    )


def counts(session: Session, principal: Principal) -> dict[str, int]:
    """Figures for the dashboard, inside the principal's view."""
    orgs = session.scalar(
        select(func.count()).select_from(Organization).where(policy.org_filter(principal))
    )
    contacts = session.scalar(
        select(func.count())
        .select_from(Contact)
        .where(policy.scope_filter(principal, Contact.org_id))
    )
    assets = session.scalar(
        select(func.count()).select_from(Asset).where(policy.scope_filter(principal, Asset.org_id))
    )
    return {"organizations": orgs or 0, "contacts": contacts or 0, "assets": assets or 0}


@dataclass
class WhoisOwner:
    org: Organization
    national_body: Organization | None
    contacts: list[Contact]  # the owner's own, else its national body's


@dataclass
class Whois:
    query: str
    kind: str  # "ip", "domain" or "asn"
    matched: str  # the prefix, domain or AS number that matched
    owners: list[WhoisOwner]


def _check_whois_query(query: str) -> None:
    """Text that is no IP address, AS number, domain or e-mail address is a mistake to
    tell, rather than a resource nobody owns."""
    text = query.strip()
    try:
        if not text:
            raise ValueError("give an IP address, a domain or an AS number")
        if "/" in text:  # a network may span several owners' prefixes
            raise ValueError(
                f"{text!r} is a network: look up one address of it, a domain or an AS number"
            )
        if ":" in text:
            ipaddress.IPv6Address(text.split("%", 1)[0])
        elif all(c.isdigit() or c == "." for c in text):
            ipaddress.IPv4Address(text)
        elif text[:2].upper() == "AS" and text[2:].isdigit():
            validate.asn(text)
        else:
            validate.domain(text.rsplit("@", 1)[-1])
    except ipaddress.AddressValueError:
        raise InvalidInput(f"{text!r} is not an IP address", FaultLocation(field="query")) from None
    except ValueError as exc:
        raise InvalidInput(str(exc), FaultLocation(field="query")) from None


def whois(session: Session, p: Principal, query: str) -> Whois:
    """Who owns an IP address, a domain (or e-mail address) or an AS number, as far as `p`
    may see: the most specific asset wins; owners come with national body and contacts."""
    from concord.orgs.whois import current_index

    if "://" in query:  # a URL pasted whole: whose is its host
        query = urlsplit(query.strip()).hostname or query
    if query.strip().isdigit():  # a bare number is an AS number, as whois tools read it
        query = "AS" + query.strip()
    _check_whois_query(query)
    match = current_index(session).lookup(query)
    owners = (
        list(
            session.scalars(
                select(Organization).where(Organization.id.in_(match.org_ids), policy.org_filter(p))
            )
        )
        if match is not None
        else []
    )
    if match is None or not owners:
        raise NotFound(f"no owner is known for {query!r}")
    parents = {
        o.id: o
        for o in session.scalars(
            select(Organization).where(
                Organization.id.in_([o.parent_id for o in owners if o.parent_id]),
                policy.org_filter(p),
            )
        )
    }
    contacts: dict[int, list[Contact]] = {}
    for c in session.scalars(
        select(Contact)
        .where(
            Contact.org_id.in_([o.id for o in owners] + list(parents)),
            policy.scope_filter(p, Contact.org_id),
        )
        .order_by(Contact.id)
    ):
        contacts.setdefault(c.org_id, []).append(c)
    audit.record_reads(session, p, "organization", owners)
    found = []
    for o in owners:
        parent = parents.get(o.parent_id) if o.parent_id else None
        own = contacts.get(o.id) or (contacts.get(parent.id, []) if parent else [])
        # A national body's or the centre's own resource: the body is its own national
        # body, the centre has none (its parent, if any, is no national body of its).
        if o.kind == OrgKind.NATIONAL_BODY:
            body: Organization | None = o
        elif o.kind == OrgKind.CENTRE:
            body = None
        else:
            body = parent
        found.append(WhoisOwner(o, body, own))
    return Whois(query, match.kind, match.matched, found)
