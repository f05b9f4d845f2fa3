"""The whois lookup index: longest prefix, longest domain suffix, AS numbers, and its cache."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.orgs import readers, service, whois
from concord.orgs.model import Asset, Organization
from concord.orgs.whois import LookupIndex, Match, current_index, load_index
from tests.conftest import Network

KZ, UZ, THIRD = 11, 22, 33

ROWS = [
    (KZ, "ipv4-prefix", "198.51.100.0/24"),
    (UZ, "ipv4-prefix", "198.51.100.16/28"),
    (KZ, "ipv4-prefix", "192.0.2.0/24"),
    (UZ, "ipv6-prefix", "2001:db8::/32"),
    (KZ, "ipv6-prefix", "2001:db8:100::/48"),
    (KZ, "domain", "example.org"),
    (UZ, "domain", "mail.example.org"),
    (UZ, "email-domain", "silk-telecom.example"),
    (KZ, "domain", "xn----8sbcoujqeeium.example"),
    (KZ, "asn", "AS64500"),
    (UZ, "asn", "AS4200000000"),
    (KZ, "software", "pkg:npm/minimist"),  # not indexed here
]


@pytest.fixture
def index() -> LookupIndex:
    return LookupIndex.build(ROWS)


def owners(match: Match | None) -> tuple[str, tuple[int, ...]] | None:
    return None if match is None else (match.matched, match.org_ids)


def test_longest_ipv4_prefix_wins(index: LookupIndex) -> None:
    assert owners(index.lookup("198.51.100.20")) == ("198.51.100.16/28", (UZ,))
    assert owners(index.lookup("198.51.100.16")) == ("198.51.100.16/28", (UZ,))
    assert owners(index.lookup("198.51.100.31")) == ("198.51.100.16/28", (UZ,))
    assert owners(index.lookup("198.51.100.32")) == ("198.51.100.0/24", (KZ,))
    assert owners(index.lookup("198.51.100.5")) == ("198.51.100.0/24", (KZ,))
    assert owners(index.lookup(" 192.0.2.255 ")) == ("192.0.2.0/24", (KZ,))
    match = index.lookup("198.51.100.20")
    assert match == Match("198.51.100.20", "ip", "198.51.100.16/28", (UZ,))


def test_longest_ipv6_prefix_wins(index: LookupIndex) -> None:
    assert owners(index.lookup("2001:db8:100::1")) == ("2001:db8:100::/48", (KZ,))
    assert owners(index.lookup("2001:DB8:0100:0000::ff")) == ("2001:db8:100::/48", (KZ,))
    assert owners(index.lookup("2001:db8:101::1")) == ("2001:db8::/32", (UZ,))
    assert index.lookup("2001:db9::1") is None
    match = index.lookup("2001:0DB8::0001")
    assert match is not None and match.query == "2001:db8::1"  # shown canonical


def test_ipv4_and_ipv6_spaces_do_not_mix() -> None:
    # "::/0" covers every IPv6 address, and IPv4 addresses are not IPv6 addresses.
    index = LookupIndex.build([(KZ, "ipv6-prefix", "::/0"), (UZ, "ipv4-prefix", "0.0.0.0/0")])
    assert owners(index.lookup("192.0.2.1")) == ("0.0.0.0/0", (UZ,))
    assert owners(index.lookup("2001:db8::1")) == ("::/0", (KZ,))
    # An IPv4-mapped IPv6 address is the IPv4 address.
    assert owners(index.lookup("::ffff:192.0.2.1")) == ("0.0.0.0/0", (UZ,))


def test_ip_lookup_edge_cases(index: LookupIndex) -> None:
    assert index.lookup("203.0.113.1") is None
    assert index.lookup("fe80::1%eth0") is None  # a zone index is no crash
    assert owners(index.lookup("2001:db8::1%eth0")) == ("2001:db8::/32", (UZ,))
    assert owners(index.lookup_ip("198.51.100.20")) == ("198.51.100.16/28", (UZ,))
    for not_an_address in ("198.51.100", "198.51.100.256", "198.051.100.1", "198.51.100.1/24"):
        assert index.lookup_ip(not_an_address) is None
        assert index.lookup(not_an_address) is None


def test_domain_suffix(index: LookupIndex) -> None:
    assert owners(index.lookup("example.org")) == ("example.org", (KZ,))
    assert owners(index.lookup("www.example.org")) == ("example.org", (KZ,))
    assert owners(index.lookup("mail.example.org")) == ("mail.example.org", (UZ,))
    assert owners(index.lookup("imap.eu.mail.example.org")) == ("mail.example.org", (UZ,))
    assert owners(index.lookup("Mail.Example.ORG.")) == ("mail.example.org", (UZ,))
    assert owners(index.lookup("xmail.example.org")) == ("example.org", (KZ,))
    assert index.lookup("example.org.evil.example") is None
    assert index.lookup("notexample.org") is None
    assert index.lookup("org") is None
    match = index.lookup("WWW.example.org")
    assert match == Match("WWW.example.org", "domain", "example.org", (KZ,))


def test_idn_query_finds_the_punycode_domain(index: LookupIndex) -> None:
    assert owners(index.lookup("почта.степной-банк.example")) == (
        "xn----8sbcoujqeeium.example",
        (KZ,),
    )
    assert index.lookup("☃.example") is None  # not a valid name: no match, no error


def test_email_address(index: LookupIndex) -> None:
    assert owners(index.lookup("soc@silk-telecom.example")) == ("silk-telecom.example", (UZ,))
    assert owners(index.lookup("alice@mail.example.org")) == ("mail.example.org", (UZ,))
    assert owners(index.lookup("bob@branch.example.org")) == ("example.org", (KZ,))
    assert owners(index.lookup('"odd@quoted"@example.org')) == ("example.org", (KZ,))
    assert index.lookup("carol@unknown.example") is None


def test_asn(index: LookupIndex) -> None:
    assert index.lookup("AS64500") == Match("AS64500", "asn", "AS64500", (KZ,))
    assert owners(index.lookup("as4200000000")) == ("AS4200000000", (UZ,))
    assert index.lookup_asn(64500) == Match("AS64500", "asn", "AS64500", (KZ,))
    assert index.lookup("AS64501") is None
    assert index.lookup("AS²") is None  # a digit to str.isdigit, not to int(): no crash
    assert index.lookup("AS") is None


def test_no_match_and_empty(index: LookupIndex) -> None:
    for query in ("", "   ", "unknown.example", "localhost", "pkg:npm/minimist", "::", "@"):
        assert index.lookup(query) is None
    assert LookupIndex().lookup("198.51.100.1") is None


def test_shared_assets_list_every_owner() -> None:
    index = LookupIndex.build(
        [
            (KZ, "domain", "shared.example"),
            (UZ, "email-domain", "shared.example"),
            (UZ, "domain", "shared.example"),  # same owner twice: listed once
            (KZ, "ipv4-prefix", "192.0.2.0/24"),
            (THIRD, "ipv4-prefix", "192.0.2.0/24"),
        ]
    )
    assert owners(index.lookup("www.shared.example")) == ("shared.example", (KZ, UZ))
    assert owners(index.lookup("192.0.2.1")) == ("192.0.2.0/24", (KZ, THIRD))
    assert index.size == 5


def test_rows_that_cannot_be_indexed_are_skipped() -> None:
    # Values older validators let through must not take the whole index down.
    index = LookupIndex.build(
        [
            (KZ, "ipv6-prefix", "fe80::%eth0/64"),
            (KZ, "ipv4-prefix", "192.0.2.0/33"),
            (KZ, "asn", "AS١٢٣"),
            (UZ, "ipv4-prefix", "192.0.2.0/24"),
        ]
    )
    assert index.skipped == 3 and index.size == 1
    assert owners(index.lookup("192.0.2.1")) == ("192.0.2.0/24", (UZ,))


# --- through the database ------------------------------------------------------------------


def org_id(session: Session, slug: str) -> int:
    found = session.scalar(select(Organization.id).where(Organization.slug == slug))
    assert found is not None
    return found


def import_csv(session: Session, principal: object, slug: str, text: str) -> None:
    report = service.import_assets(
        session,
        principal,  # type: ignore[arg-type]
        slug,
        readers.read(text.encode(), "assets.csv"),
    )
    assert report.imported and not report.refused, report.as_dict()
    session.commit()


def test_load_index_from_imported_assets(session: Session, network: Network) -> None:
    import_csv(
        session,
        network["kz-analyst"],
        "kz-bank",
        "value\n198.51.100.0/24\n2001:db8:100::/48\nexample.org\nAS64500\npkg:npm/minimist@1.2.8\n",
    )
    # an overlap across states: the centre records it
    centre = network["centre-admin"]
    import_csv(session, centre, "uz-telecom", "value\n198.51.100.16/28\nmail.example.org\n")
    kz, uz = org_id(session, "kz-bank"), org_id(session, "uz-telecom")
    index = load_index(session)
    assert index.size == 6  # the purl is not indexed
    assert owners(index.lookup("198.51.100.20")) == ("198.51.100.16/28", (uz,))
    assert owners(index.lookup("198.51.100.200")) == ("198.51.100.0/24", (kz,))
    assert owners(index.lookup("2001:db8:100::1")) == ("2001:db8:100::/48", (kz,))
    assert owners(index.lookup("noc@mail.example.org")) == ("mail.example.org", (uz,))
    assert owners(index.lookup("www.example.org")) == ("example.org", (kz,))
    assert owners(index.lookup("AS64500")) == ("AS64500", (kz,))


def test_current_index_is_reused_until_assets_change(
    session: Session, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    real_load = whois.load_index

    def counting_load(s: Session) -> LookupIndex:
        builds.append(1)
        return real_load(s)

    monkeypatch.setattr(whois, "load_index", counting_load)
    kz_analyst = network["kz-analyst"]
    import_csv(session, kz_analyst, "kz-bank", "value\n198.51.100.0/24\n")
    first = current_index(session)
    assert current_index(session) is first
    assert current_index(session) is first
    assert len(builds) == 1
    assert first.lookup("198.51.100.20") is not None and first.lookup("example.org") is None

    # An import that changes nothing bumps no revision: the index is reused.
    import_csv(session, kz_analyst, "kz-bank", "value\n198.51.100.0/24\n")
    assert current_index(session) is first and len(builds) == 1

    # An import that adds assets bumps the revision: the index is rebuilt, once.
    import_csv(session, network["centre-admin"], "uz-telecom", "value\n198.51.100.16/28\n")
    second = current_index(session)
    assert second is not first and len(builds) == 2
    assert current_index(session) is second and len(builds) == 2
    assert owners(second.lookup("198.51.100.20")) == (
        "198.51.100.16/28",
        (org_id(session, "uz-telecom"),),
    )

    # Deleting an asset bumps it too.
    asset_id = session.scalar(select(Asset.id).where(Asset.value == "198.51.100.16/28"))
    assert asset_id is not None
    service.delete_asset(session, network["uz-analyst"], asset_id)  # type: ignore[arg-type]
    session.commit()
    third = current_index(session)
    assert third is not second and len(builds) == 3
    assert owners(third.lookup("198.51.100.20")) == (
        "198.51.100.0/24",
        (org_id(session, "kz-bank"),),
    )


def test_current_index_is_seen_by_another_session(session: Session, network: Network) -> None:
    from concord import db

    import_csv(session, network["kz-analyst"], "kz-bank", "value\nexample.org\n")
    first = current_index(session)
    session.commit()  # a request's transaction ends with the request
    other = db.session_factory(session.get_bind().url.render_as_string(False))()
    try:
        assert current_index(other) is first  # the same database: one index per process
        import_csv(other, network["kz-analyst"], "kz-bank", "value\nexample.net\n")
        rebuilt = current_index(session)
        assert rebuilt is not first and rebuilt.lookup("www.example.net") is not None
    finally:
        other.close()
