"""Importing asset files through the service: all or nothing, idempotent, permitted, audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.access.model import Principal
from concord.audit.model import AuditRecord
from concord.errors import Forbidden, NotFound
from concord.orgs import readers, service
from concord.orgs.model import Asset, Organization
from tests.conftest import FIXTURES, Network

ASSETS = FIXTURES / "assets"


def read(name: str) -> list[readers.AssetRow | readers.RowError]:
    return list(readers.read((ASSETS / name).read_bytes(), name))


def read_bytes(data: bytes, name: str = "upload.csv") -> list[readers.AssetRow | readers.RowError]:
    return list(readers.read(data, name))


def assets_of(session: Session, slug: str) -> dict[tuple[str, str, str], Asset]:
    org_id = session.scalar(select(Organization.id).where(Organization.slug == slug))
    return {
        (a.kind, a.value, a.version): a
        for a in session.scalars(select(Asset).where(Asset.org_id == org_id))
    }


def import_records(session: Session) -> list[AuditRecord]:
    return list(
        session.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "import", AuditRecord.object_kind == "asset")
            .order_by(AuditRecord.seq)
        )
    )


def test_inventory_import_stores_canonical_rows(session: Session, network: Network) -> None:
    report = service.import_assets(
        session, network["kz-analyst"], "kz-bank", read("kz-bank-inventory.csv")
    )
    session.commit()
    assert (report.added, report.changed, report.unchanged, report.refused) == (13, 0, 0, [])
    assert report.imported is True
    stored = assets_of(session, "kz-bank")
    assert len(stored) == 13
    head_office = stored[("ipv4-prefix", "192.0.2.0/24", "")]
    assert head_office.description == "Head office network"
    assert (head_office.range_start, head_office.range_end) == (
        readers.pad(0xC0000200),
        readers.pad(0xC00002FF),
    )
    assert stored[("asn", "AS64501", "")].asn == 64501
    assert ("domain", "xn----8sbcoujqeeium.example", "") in stored
    assert ("software", "pkg:npm/minimist", "0.0.8") in stored
    # The JSON form of the same inventory is the same assets: nothing to add or change.
    again = service.import_assets(
        session, network["kz-analyst"], "kz-bank", read("kz-bank-inventory.json")
    )
    assert (again.added, again.changed, again.unchanged) == (0, 0, 13)


def test_a_file_with_errors_imports_nothing(session: Session, network: Network) -> None:
    report = service.import_assets(
        session, network["kz-analyst"], "kz-bank", read("kz-bank-broken.csv")
    )
    assert report.imported is False
    assert (report.added, report.changed, report.unchanged) == (0, 0, 0)
    refused = {e.location.line: e.reason for e in report.refused}
    assert sorted(refused) == [3, 4, 6, 7, 8, 11, 12]
    assert refused[11] == "duplicate of kz-bank-broken.csv:line 5"
    assert "did you mean 192.0.2.0/24?" in refused[3]
    assert all(e.location.source == "kz-bank-broken.csv" for e in report.refused)
    as_dict = report.as_dict()
    assert as_dict["imported"] is False
    assert {"source": "kz-bank-broken.csv", "line": 8, "reason": "expected 4 fields, found 2"} in (
        as_dict["refused"]
    )
    session.commit()
    assert assets_of(session, "kz-bank") == {}
    assert service.asset_revision(session) == 0
    assert import_records(session) == []


def test_valid_only_imports_the_good_rows(session: Session, network: Network) -> None:
    report = service.import_assets(
        session, network["kz-analyst"], "kz-bank", read("kz-bank-broken.csv"), valid_only=True
    )
    session.commit()
    assert report.imported is True
    assert (report.added, report.changed, report.unchanged) == (3, 0, 0)
    assert len(report.refused) == 7
    assert set(assets_of(session, "kz-bank")) == {
        ("ipv4-prefix", "192.0.2.0/24", ""),
        ("domain", "steppe-bank.example", ""),
        ("software", "cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*", "2.14.1"),
    }
    # The first of two duplicate rows is the one kept.
    assert assets_of(session, "kz-bank")[("domain", "steppe-bank.example", "")].description == (
        "Public web site"
    )


def test_valid_only_json_with_pointers(session: Session, network: Network) -> None:
    report = service.import_assets(
        session, network["kz-analyst"], "kz-bank", read("kz-bank-broken.json"), valid_only=True
    )
    assert report.added == 2
    assert [e.location.pointer for e in report.refused] == [f"/assets/{i}" for i in range(1, 6)]


def test_reimport_changes_nothing(session: Session, network: Network) -> None:
    kz = network["kz-analyst"]
    first = service.import_assets(session, kz, "kz-bank", read("kz-bank-inventory.csv"))
    session.commit()
    revision = service.asset_revision(session)
    before = {k: (a.id, a.updated_at) for k, a in assets_of(session, "kz-bank").items()}
    second = service.import_assets(session, kz, "kz-bank", read("kz-bank-inventory.csv"))
    session.commit()
    assert (first.added, first.unchanged) == (13, 0)
    assert (second.added, second.changed, second.unchanged) == (0, 0, 13)
    assert {k: (a.id, a.updated_at) for k, a in assets_of(session, "kz-bank").items()} == before
    assert service.asset_revision(session) == revision  # lookup indexes need no rebuild
    assert len(import_records(session)) == 1  # nothing happened the second time


def test_a_changed_description_counts_as_changed(session: Session, network: Network) -> None:
    kz = network["kz-analyst"]
    service.import_assets(
        session,
        kz,
        "kz-bank",
        read_bytes(b"value,description\n192.0.2.0/24,Head office\nexample.org,Site\n"),
    )
    session.commit()
    revision = service.asset_revision(session)
    report = service.import_assets(
        session,
        kz,
        "kz-bank",
        read_bytes(
            b"value,description\n192.0.2.0/24,Head office (moved)\nexample.org,Site\n"
            b"example.net,New site\n"
        ),
    )
    session.commit()
    assert (report.added, report.changed, report.unchanged) == (1, 1, 1)
    stored = assets_of(session, "kz-bank")
    assert stored[("ipv4-prefix", "192.0.2.0/24", "")].description == "Head office (moved)"
    assert len(stored) == 3
    assert service.asset_revision(session) != revision


def test_a_new_version_is_a_new_asset(session: Session, network: Network) -> None:
    kz = network["kz-analyst"]
    service.import_assets(session, kz, "kz-bank", read_bytes(b"value\npkg:npm/minimist@0.0.8\n"))
    report = service.import_assets(
        session, kz, "kz-bank", read_bytes(b"value,version\npkg:npm/minimist,1.2.8\n")
    )
    assert (report.added, report.unchanged) == (1, 0)
    assert {k for k in assets_of(session, "kz-bank") if k[0] == "software"} == {
        ("software", "pkg:npm/minimist", "0.0.8"),
        ("software", "pkg:npm/minimist", "1.2.8"),
    }


def test_duplicate_rows_in_one_file_are_refused(session: Session, network: Network) -> None:
    # Written differently, the same canonical asset: still a duplicate.
    data = b"kind,value\ndomain,example.org\n,Example.ORG.\nasn,AS64500\nasn,64500\n"
    report = service.import_assets(session, network["kz-analyst"], "kz-bank", read_bytes(data))
    assert report.imported is False
    assert [(e.location.line, e.reason) for e in report.refused] == [
        (3, "duplicate of upload.csv:line 2"),
        (5, "duplicate of upload.csv:line 4"),
    ]
    assert assets_of(session, "kz-bank") == {}


def test_same_asset_for_two_owners_is_allowed(session: Session, network: Network) -> None:
    data = read_bytes(b"value\nshared-hosting.example\n")
    assert service.import_assets(session, network["kz-analyst"], "kz-bank", data).added == 1
    # Across states the centre records the overlap: a national body that could declare
    # another state's resource would read that state's events shared with its owners.
    refused = service.import_assets(session, network["uz-analyst"], "uz-telecom", data)
    assert refused.added == 0 and "ask the centre" in refused.refused[0].reason
    assert service.import_assets(session, network["centre-admin"], "uz-telecom", data).added == 1


def test_large_import_is_batched(
    session: Session, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "INSERT_BATCH", 7)
    lines = "\n".join(f"10.{i // 256}.{i % 256}.0/24" for i in range(50))
    progress: list[int] = []
    report = service.import_assets(
        session,
        network["kz-analyst"],
        "kz-bank",
        read_bytes(f"value\n{lines}\n".encode()),
        progress=progress.append,
    )
    assert report.added == 50 and len(assets_of(session, "kz-bank")) == 50
    assert sum(progress) == 50


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        # another state's staff and owners do not see kz-bank: it answers as unknown
        ("uz-analyst", "no organisation 'kz-bank'"),
        ("uz-admin", "no organisation 'kz-bank'"),
        ("uz-telecom-contact", "no organisation 'kz-bank'"),
        ("kz-reader", "your role does not allow this: it needs the 'write' scope"),
    ],
)
def test_others_cannot_import_for_kz_bank(
    session: Session, network: Network, who: str, reason: str
) -> None:
    principal = network[who]
    assert isinstance(principal, Principal)
    with pytest.raises((Forbidden, NotFound), match=reason):
        service.import_assets(session, principal, "kz-bank", read("kz-bank-inventory.csv"))
    assert assets_of(session, "kz-bank") == {}


@pytest.mark.parametrize("who", ["kz-bank-contact", "kz-analyst", "kz-admin", "centre-analyst"])
def test_the_owner_its_national_body_and_the_centre_can_import(
    session: Session, network: Network, who: str
) -> None:
    report = service.import_assets(session, network[who], "kz-bank", read("kz-bank-inventory.csv"))
    assert report.added == 13


def test_forbidden_is_decided_before_reading_the_rows(session: Session, network: Network) -> None:
    def rows():  # type: ignore[no-untyped-def]
        raise AssertionError("rows were read for a principal without the right to import")
        yield

    with pytest.raises(NotFound):
        service.import_assets(session, network["uz-analyst"], "kz-bank", rows())
    with pytest.raises(Forbidden):
        service.import_assets(session, network["kz-reader"], "kz-bank", rows())


def test_imports_are_audited(session: Session, network: Network) -> None:
    contact = network["kz-bank-contact"]
    assert isinstance(contact, Principal)
    service.import_assets(session, contact, "kz-bank", read("kz-bank-inventory.csv"))
    session.commit()
    # Nothing changed (the same assets again), nothing imported (a refused file): no record.
    service.import_assets(session, contact, "kz-bank", read("kz-bank-inventory.json"))
    service.import_assets(session, contact, "kz-bank", read("kz-bank-broken.csv"))
    session.commit()
    update = b"value,description\n192.0.2.0/24,Head office (moved)\nexample.org,Shop\nlocalhost,x\n"
    service.import_assets(session, contact, "kz-bank", read_bytes(update), valid_only=True)
    session.commit()
    records = import_records(session)
    assert len(records) == 2
    first, second = records
    assert (first.actor, first.actor_user_id, first.actor_org_id, first.object_id) == (
        "kz-bank-contact",
        contact.user_id,
        contact.org_id,
        "kz-bank",
    )
    assert json.loads(first.detail) == {"added": 13, "changed": 0, "refused": 0}
    assert json.loads(second.detail) == {"added": 1, "changed": 1, "refused": 1}
    assert second.seq > first.seq and second.prev_hash == first.hash


def test_an_import_without_a_principal_is_audited_as_the_system(
    session: Session, network: Network
) -> None:
    service.import_assets(session, None, "kz-bank", read_bytes(b"value\nexample.org\n"))
    (record,) = import_records(session)
    assert (record.actor, record.actor_user_id) == ("system", None)


def test_text_no_database_can_store_is_refused_not_a_crash(
    session: Session, network: Network
) -> None:
    # Before the readers refused them, a NUL (PostgreSQL) or an unpaired surrogate (every
    # backend) reached the INSERT and failed the whole request with a database error.
    data = (
        b'[{"value": "example.org", "description": "ok"},'
        b' {"value": "example.net", "description": "a\\u0000b"},'
        b' {"value": "example.com", "description": "a\\ud800b"},'
        b' {"value": "pkg:npm/minimist", "version": "1.2.8\\u0000"}]'
    )
    report = service.import_assets(
        session, network["kz-analyst"], "kz-bank", read_bytes(data, "upload.json"), valid_only=True
    )
    session.commit()
    assert report.added == 1
    assert [(e.location.pointer, e.reason) for e in report.refused] == [
        ("/1", "the description contains a NUL character"),
        ("/2", "the description is not valid Unicode text (unpaired surrogate)"),
        ("/3", "the version contains a NUL character"),
    ]
    assert set(assets_of(session, "kz-bank")) == {("domain", "example.org", "")}


def test_refused_rows_are_reported_in_file_order(session: Session, network: Network) -> None:
    service.import_assets(session, None, "uz-telecom", read_bytes(b"value\n203.0.113.0/28\n"))
    data = read_bytes(b"value\n203.0.113.8/32\n999.1.1.1/32\n198.51.100.0/28\n")
    report = service.import_assets(session, network["kz-bank-contact"], "kz-bank", data)
    # the overlap (line 2) is found after reading, the bad address (line 3) while reading
    assert [e.location.line for e in report.refused] == [2, 3]
