"""The one access policy of Concord.

Every read path (API, UI, CLI, exports, reports, search) asks this module for a SQL filter
and applies it in its query; nothing else decides visibility. Writes are checked here too.

TLP 2.0 (FIRST) as applied to the network:

* CLEAR: everyone, the anonymous public included.
* GREEN: every organisation of the network (any signed-in principal).
* AMBER: the originating organisation, the centre, and the organisations it was shared
  with; where the originator allowed it, also the constituents of those recipients.
* AMBER+STRICT: the originating organisation and the named recipient organisations only.
* RED: the named recipient users only (and the user who created it).

Management data (contacts, assets, users, tokens, audit) is scoped by organisation: the
centre sees the whole network, a national body itself and its constituents, anyone else
only its own organisation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from concord.access.model import Principal, Role, Share, TokenScope
from concord.orgs.model import Organization, OrgKind


class AccessDenied(Exception):
    """Raised when a principal may not perform a write or see an object."""


def tlp_filter(principal: Principal, model: Any, level: Any = None) -> ColumnElement[bool]:
    """SQL condition: rows of a Sharable `model` that `principal` may see under TLP: the
    row's own, or `level` (an expression) for what was written under another label, such
    as a case's comment written while the case was narrower than it is now."""
    tlp = model.tlp if level is None else level
    clear = tlp == "clear"
    if principal.anonymous:
        return clear

    kind = model.object_kind
    shared_with_org = exists(
        select(Share.id).where(
            Share.object_kind == kind,
            Share.object_id == model.id,
            Share.org_id == principal.org_id,
        )
    )
    own = model.origin_org_id == principal.org_id
    amber_parts: list[ColumnElement[bool]] = [own, shared_with_org]
    if principal.is_centre:
        amber_parts.append(true())
    if principal.org_parent_id is not None and principal.org_kind in (
        OrgKind.OWNER,
        OrgKind.PARTNER,
    ):
        # "Constituents" are the owners and partners under a national body; a national
        # body's own parent is the centre, whose constituents are not the member states.
        amber_parts.append(
            and_(
                model.share_constituents.is_(True),
                exists(
                    select(Share.id).where(
                        Share.object_kind == kind,
                        Share.object_id == model.id,
                        Share.org_id == principal.org_parent_id,
                    )
                ),
            )
        )
    red = or_(
        model.origin_user_id == principal.user_id,
        exists(
            select(Share.id).where(
                Share.object_kind == kind,
                Share.object_id == model.id,
                Share.user_id == principal.user_id,
            )
        ),
    )
    return or_(
        tlp.in_(("clear", "green")),
        and_(tlp == "amber", or_(*amber_parts)),
        and_(tlp == "amber+strict", or_(own, shared_with_org)),
        and_(tlp == "red", red),
    )


def organisation_view(org_id: int, org_kind: str, org_parent_id: int | None) -> Principal:
    """A principal standing for an organisation as a whole, for what is written for the
    organisation rather than for one user (correlation alerts): it sees what every analyst
    of the organisation sees, and no named user's TLP:RED. User ids start at 1, so 0 is no
    user's."""
    return Principal(0, None, org_id, org_kind, org_parent_id, Role.ANALYST)


def scope_filter(principal: Principal, org_id_column: Any) -> ColumnElement[bool]:
    """SQL condition: management rows (keyed by organisation) inside the principal's scope."""
    if principal.anonymous:
        return false()
    if principal.is_centre:  # the centre's staff, or the operator at the console
        return true()
    if principal.org_id is None:
        return false()
    if principal.org_kind == OrgKind.NATIONAL_BODY:
        constituents = select(Organization.id).where(Organization.parent_id == principal.org_id)
        return or_(org_id_column == principal.org_id, org_id_column.in_(constituents))
    return org_id_column == principal.org_id


def submission_filter(principal: Principal, model: Any) -> ColumnElement[bool]:
    """SQL condition: submissions whose receipts `principal` may read. A receipt quotes the
    records it refused, so within the organisations the principal manages it is read as
    its TLP allows: AMBER by the organisation and the centre, AMBER+STRICT by the
    organisation, RED by its sender alone."""
    own = model.org_id == principal.org_id
    amber = true() if principal.is_centre else own
    return and_(
        scope_filter(principal, model.org_id),
        or_(
            model.tlp.in_(("clear", "green")),
            and_(model.tlp == "amber", amber),
            and_(model.tlp == "amber+strict", own),
            and_(model.tlp == "red", model.user_id == principal.user_id),
        ),
    )


def org_filter(principal: Principal) -> ColumnElement[bool]:
    """Organisations a principal may see: by TLP, or because they are in its scope."""
    return or_(tlp_filter(principal, Organization), scope_filter(principal, Organization.id))


def in_scope(principal: Principal, org: Organization) -> bool:
    """The Python twin of scope_filter, for one organisation already loaded."""
    if principal.anonymous:
        return False
    if principal.is_centre:
        return True
    if principal.org_id is None:
        return False
    if org.id == principal.org_id:
        return True
    return principal.org_kind == OrgKind.NATIONAL_BODY and org.parent_id == principal.org_id


def require_scope(principal: Principal, scope: TokenScope) -> None:
    if principal.anonymous:
        raise AccessDenied("sign in first")
    if not principal.can(scope):
        raise AccessDenied(missing_scope(principal, scope))


def missing_scope(principal: Principal, scope: TokenScope) -> str:
    """Why `principal` lacks `scope`: its role (a signed-in reader), or a narrower token."""
    if principal.role is None or scope not in scopes_for_role(principal.role):
        return f"your role does not allow this: it needs the '{scope.value}' scope"
    return f"this credential lacks the '{scope.value}' scope"


# The roles that work on the network's data: create organisations, share, handle cases.
STAFF_ROLES = (Role.ADMIN, Role.ANALYST)


def staff_writer(principal: Principal) -> bool:
    """An admin or analyst holding the write scope: who creates organisations and shares
    what its organisation reported."""
    return principal.role in STAFF_ROLES and principal.can(TokenScope.WRITE)


def may_submit(principal: Principal) -> bool:
    """Reports and feeds are sent in by any signed-in role but readers, with write scope."""
    return (
        not principal.anonymous
        and principal.role is not None
        and principal.role != Role.READER
        and principal.can(TokenScope.WRITE)
    )


def check_org_create(principal: Principal, kind: str, parent: Organization | None) -> None:
    require_scope(principal, TokenScope.WRITE)
    if not staff_writer(principal):
        raise AccessDenied("only admins and analysts create organisations")
    if principal.is_centre:
        return
    if principal.org_kind == OrgKind.NATIONAL_BODY and kind in (OrgKind.OWNER, OrgKind.PARTNER):
        if parent is not None and parent.id == principal.org_id:
            return
        raise AccessDenied("a national body adds owners and partners under itself only")
    raise AccessDenied("only the centre adds centres and national bodies")


def centre_reads(tlp: str) -> bool:
    """Whether the centre reads an object of this TLP without a share (tlp_filter's rule)."""
    return tlp in ("clear", "green", "amber")


def creatable_org_kinds(principal: Principal) -> list[OrgKind]:
    """The kinds of organisation `principal` may add (under itself, for a national body)."""
    if not staff_writer(principal):
        return []
    if principal.is_centre:
        return list(OrgKind)
    if principal.org_kind == OrgKind.NATIONAL_BODY:
        return [OrgKind.OWNER, OrgKind.PARTNER]
    return []


def check_org_edit(principal: Principal, org: Organization) -> None:
    require_scope(principal, TokenScope.WRITE)
    if principal.role not in STAFF_ROLES or not in_scope(principal, org):
        raise AccessDenied(f"you may not change organisation {org.slug}")


def check_org_data_write(principal: Principal, org: Organization) -> None:
    """Contacts and assets: staff in scope, or the owner's own contacts."""
    require_scope(principal, TokenScope.WRITE)
    if principal.role in STAFF_ROLES and in_scope(principal, org):
        return
    if principal.role == Role.OWNER_CONTACT and org.id == principal.org_id:
        return
    raise AccessDenied(f"you may not change the contacts or assets of {org.slug}")


def may_write_org_data(principal: Principal, org: Organization) -> bool:
    """Whether the contact and asset forms of `org` are for `principal` (pages hide them)."""
    try:
        check_org_data_write(principal, org)
    except AccessDenied:
        return False
    return True


def check_event_share(principal: Principal, event: Any) -> None:
    """Sharing an event widens who reads it, which TLP leaves to the source: the staff of
    the organisation that reported it; for TLP:AMBER also the centre's, which may pass it to
    the members that need it. AMBER+STRICT stays with its source's decision."""
    require_scope(principal, TokenScope.WRITE)
    if principal.role not in STAFF_ROLES:
        raise AccessDenied("only admins and analysts share events")
    if event.origin_org_id == principal.org_id:
        return
    if principal.is_centre and event.tlp == "amber":
        return
    raise AccessDenied("only the organisation that reported an event shares it further")


def may_share_event(principal: Principal, event: Any) -> bool:
    try:
        check_event_share(principal, event)
    except AccessDenied:
        return False
    return True


def check_user_admin(principal: Principal, org: Organization) -> None:
    require_scope(principal, TokenScope.ADMIN)
    if principal.role != Role.ADMIN or not in_scope(principal, org):
        raise AccessDenied(f"you may not manage the users of {org.slug}")


def allowed_roles(org_kind: str) -> tuple[Role, ...]:
    """Owner organisations have owner-contacts; the centre and national bodies have staff."""
    if org_kind in (OrgKind.OWNER, OrgKind.PARTNER):
        return (Role.OWNER_CONTACT, Role.READER)
    return (Role.ADMIN, Role.ANALYST, Role.READER)


def scopes_for_role(role: Role) -> frozenset[TokenScope]:
    """The widest scopes a role can hold; a token may carry fewer."""
    if role == Role.ADMIN:
        return frozenset(TokenScope)
    if role in (Role.ANALYST, Role.OWNER_CONTACT):
        return frozenset({TokenScope.READ, TokenScope.WRITE})
    return frozenset({TokenScope.READ})


def check_audit_read(principal: Principal) -> None:
    """Admins read the audit log, with the admin scope; everyone else is told so rather than
    shown an empty log."""
    require_scope(principal, TokenScope.ADMIN)
    if principal.role != Role.ADMIN:
        raise AccessDenied("only admins read the audit log")


def may_read_audit(principal: Principal) -> bool:
    try:
        check_audit_read(principal)
    except AccessDenied:
        return False
    return True


def audit_filter(
    principal: Principal,
    actor_org_column: Any,
    object_visible: ColumnElement[bool] | None = None,
) -> ColumnElement[bool]:
    """Audit records: admins only, with the admin scope (as for managing users and others'
    tokens), for actors inside their scope (the centre sees all). A record about an object
    under TLP shows only to whom the object shows, or its id, time and detail tell of what
    TLP keeps from them (a state's AMBER+STRICT submission, a colleague's RED one):
    `object_visible` is that condition, built by the audit log from this module's filters
    for each kind of object it names."""
    if not may_read_audit(principal):
        return false()
    actors = true() if principal.is_centre else scope_filter(principal, actor_org_column)
    return actors if object_visible is None else and_(actors, object_visible)


# What the centre's version of a state's report is built of: content up to TLP:AMBER, so that
# a state's AMBER+STRICT content the centre was not given changes nothing in it.
CENTRE_READS_STATE_TLPS = ("clear", "green", "amber")


def receives_reports(principal: Principal) -> bool:
    """Whether any stored generalized report can reach `principal` (see report_filter)."""
    return (
        not principal.anonymous
        and principal.role in (Role.ADMIN, Role.ANALYST, Role.READER)
        and (principal.is_centre or principal.org_kind == OrgKind.NATIONAL_BODY)
    )


def request_filter(principal: Principal, model: Any) -> ColumnElement[bool]:
    """Work a user asked for (a report being built): the requester's own, nobody else's.
    What it produces is read under its own rule (`report_filter`)."""
    if principal.anonymous or not principal.user_id:
        return false()
    return model.user_id == principal.user_id


def report_filter(principal: Principal, model: Any, country: str | None) -> ColumnElement[bool]:
    """Stored generalized reports: network reports to the centre; a state's report to that
    state's national body (`country` is the principal's), and to the centre its own version
    of it (stored as "KZ@centre", built of what both may see). Were the centre to read the
    state's own reports up to AMBER, one missing from the list would tell it that the state
    holds AMBER+STRICT content about itself."""
    if not receives_reports(principal):
        return false()
    if principal.is_centre:
        return or_(model.scope == "network", model.scope.like("%@centre"))
    if principal.org_kind == OrgKind.NATIONAL_BODY and country:
        return and_(model.scope == country, model.tlp != "red")
    return false()
