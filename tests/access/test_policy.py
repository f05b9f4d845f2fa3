"""The TLP 2.0 policy, checked object by object against what TLP says each audience sees."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from concord.access import policy
from concord.access.model import ANONYMOUS, Share, User
from concord.orgs import service as orgs
from concord.orgs.model import Organization


def _visible(session, principal) -> set[str]:  # type: ignore[no-untyped-def]
    return set(
        session.scalars(select(Organization.slug).where(policy.tlp_filter(principal, Organization)))
    )


@pytest.fixture
def labelled(session, network):  # type: ignore[no-untyped-def]
    """One owner record per TLP label, created by kz-cert, shared with uz-cert where named."""
    kz = network["kz-analyst"]
    made = {}
    for label in ("clear", "green", "amber", "amber+strict", "red"):
        slug = "obj-" + label.replace("+", "-")
        org = orgs.create_org(
            session,
            kz,
            orgs.OrgInput(slug, "owner", f"Object {label}", parent="kz-cert", tlp=label),
        )
        made[label] = org
    uz = session.scalar(select(Organization).where(Organization.slug == "uz-cert"))
    uz_analyst = session.scalar(select(User).where(User.username == "uz-analyst"))
    # Named recipients: the UZ body for AMBER+STRICT, one UZ user for RED.
    session.add(Share(object_kind="organization", object_id=made["amber+strict"].id, org_id=uz.id))
    session.add(Share(object_kind="organization", object_id=made["red"].id, user_id=uz_analyst.id))
    session.commit()
    return made


def test_anonymous_sees_clear_only(session, labelled) -> None:  # type: ignore[no-untyped-def]
    seen = _visible(session, ANONYMOUS)
    assert "obj-clear" in seen
    assert not seen & {"obj-green", "obj-amber", "obj-amber-strict", "obj-red"}


def test_green_reaches_every_organisation(session, network, labelled) -> None:  # type: ignore[no-untyped-def]
    for username in ("uz-analyst", "uz-telecom-contact", "kz-bank-contact", "centre-reader"):
        assert "obj-green" in _visible(session, network[username])


def test_amber_originator_centre_and_recipients(session, network, labelled) -> None:  # type: ignore[no-untyped-def]
    assert "obj-amber" in _visible(session, network["kz-reader"])  # originator
    assert "obj-amber" in _visible(session, network["centre-analyst"])  # the centre
    assert "obj-amber" not in _visible(session, network["uz-analyst"])  # not shared
    assert "obj-amber" not in _visible(session, network["uz-telecom-contact"])


def test_amber_reaches_constituents_only_when_allowed(session, network, labelled) -> None:  # type: ignore[no-untyped-def]
    org = labelled["amber"]
    uz = session.scalar(select(Organization).where(Organization.slug == "uz-cert"))
    session.add(Share(object_kind="organization", object_id=org.id, org_id=uz.id))
    session.commit()
    assert "obj-amber" in _visible(session, network["uz-analyst"])
    assert "obj-amber" not in _visible(session, network["uz-telecom-contact"])
    org.share_constituents = True
    session.commit()
    assert "obj-amber" in _visible(session, network["uz-telecom-contact"])


def test_amber_strict_excludes_the_centre(session, network, labelled) -> None:  # type: ignore[no-untyped-def]
    assert "obj-amber-strict" in _visible(session, network["kz-analyst"])
    assert "obj-amber-strict" in _visible(session, network["uz-admin"])  # named recipient
    assert "obj-amber-strict" not in _visible(session, network["centre-admin"])


def test_red_named_users_only(session, network, labelled) -> None:  # type: ignore[no-untyped-def]
    assert "obj-red" in _visible(session, network["uz-analyst"])  # named user
    assert "obj-red" in _visible(session, network["kz-analyst"])  # its creator
    for username in ("uz-admin", "kz-admin", "centre-admin", "kz-reader"):
        assert "obj-red" not in _visible(session, network[username])


def test_scope_filter_by_kind_of_organisation(session, network) -> None:  # type: ignore[no-untyped-def]
    def scoped(username: str) -> set[str]:
        return set(
            session.scalars(
                select(Organization.slug).where(
                    policy.scope_filter(network[username], Organization.id)
                )
            )
        )

    assert scoped("centre-reader") == {"ccc", "kz-cert", "uz-cert", "kz-bank", "uz-telecom"}
    assert scoped("kz-reader") == {"kz-cert", "kz-bank"}
    assert scoped("kz-bank-contact") == {"kz-bank"}
    assert scoped("uz-telecom-contact") == {"uz-telecom"}
    assert _visible(session, ANONYMOUS) == {"ccc", "kz-cert", "uz-cert"}
