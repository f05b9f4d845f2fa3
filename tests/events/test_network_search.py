"""A network searched for (IPv4 or IPv6) finds the events of the addresses in it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Network

EVENTS = "/api/v1/events"
Auth = dict[str, dict[str, str]]


def test_an_ipv4_network_finds_the_events_of_its_addresses(
    client: TestClient, auth: Auth, network: Network
) -> None:
    import io

    from concord.db import session_factory
    from concord.intake import service as intake
    from tests.conftest import FIXTURES
    from tests.intake.test_service import scan_csv

    def send(data: bytes, name: str) -> None:
        receipt = intake.ingest(
            session_factory(), network["kz-analyst"], intake.Source(io.BytesIO(data), name)
        )
        assert receipt.accepted, receipt

    feed = FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv"  # 192.0.2.10 and .11
    send(feed.read_bytes(), feed.name)
    others = [("192.0.2.200", 1), ("192.0.20.5", 2), ("198.51.100.7", 3), ("192.0.3.1", 4)]
    send(scan_csv([("2024-03-01 05:00:00", ip, n) for ip, n in others]), "scan_rdp.csv")

    def found(value: str) -> list[str]:
        r = client.get(EVENTS, params={"value": value}, headers=auth["kz-reader"])
        assert r.status_code == 200, r.text
        return sorted(e["observables"][0]["value"] for e in r.json()["items"])

    assert found("192.0.2.0/24") == ["192.0.2.10", "192.0.2.11", "192.0.2.200"]
    assert found("192.0.2.8/29") == ["192.0.2.10", "192.0.2.11"]  # .8 to .15
    assert found("192.0.2.0/23") == ["192.0.2.10", "192.0.2.11", "192.0.2.200", "192.0.3.1"]
    assert found("192.0.0.0/19") == [  # 192.0.0.0 to 192.0.31.255
        "192.0.2.10",
        "192.0.2.11",
        "192.0.2.200",
        "192.0.20.5",
        "192.0.3.1",
    ]
    assert found("192.0.2.10") == ["192.0.2.10"]  # an address is still found whole
    assert found("::ffff:192.0.2.0/120") == ["192.0.2.10", "192.0.2.11", "192.0.2.200"]


def test_an_ipv6_network_finds_the_events_of_its_addresses(
    client: TestClient, auth: Auth, network: Network
) -> None:
    from tests.conftest import FIXTURES
    from tests.intake.test_channels import send_file

    for path in (
        FIXTURES / "feeds" / "dataplane_sshclient.txt",  # 2001:db8::71, 192.0.2.70 and .71
        FIXTURES / "email" / "plain-bruteforce-html.eml",  # 2001:db8:4::1f among others
    ):
        r = send_file(client, auth["kz-analyst"], path.name, path.read_bytes())
        assert r.status_code == 200 and r.json()["accepted"], r.text

    def found(value: str) -> set[str]:
        r = client.get(EVENTS, params={"value": value}, headers=auth["kz-reader"])
        assert r.status_code == 200, r.text
        return {
            o["value"] for e in r.json()["items"] for o in e["observables"] if o["kind"] == "ipv6"
        }

    assert found("2001:db8::/32") == {"2001:db8::71", "2001:db8:4::1f"}
    assert found("2001:db8::/48") == {"2001:db8::71"}  # 2001:db8:0:: to 2001:db8:0:ffff:...
    assert found("2001:DB8:4::5/48") == {"2001:db8:4::1f"}  # host bits and case ignored
    assert found("2001:db8::70/127") == {"2001:db8::71"}
    assert found("2001:db8::72/127") == set()
    assert found("2001:db9::/32") == set()
    assert found("2001:0db8:0000::0071") == {"2001:db8::71"}  # an address is still found whole


def test_an_address_or_a_network_finds_the_listed_networks_that_hold_it(
    client: TestClient, auth: Auth, network: Network
) -> None:
    # "Is this address listed?": the Spamhaus DROP sample lists 1.4.0.0/17 and 2a06:e480::/29
    from tests.conftest import shared_file
    from tests.intake.test_channels import send_file

    drop = shared_file("feeds/spamhaus_drop.txt")
    sent = send_file(client, auth["kz-analyst"], drop.name, drop.read_bytes())
    assert sent.status_code == 200 and sent.json()["accepted"], sent.text

    def found(value: str) -> list[str]:
        r = client.get(EVENTS, params={"value": value}, headers=auth["kz-reader"])
        assert r.status_code == 200, r.text
        return sorted(e["observables"][0]["value"] for e in r.json()["items"])

    for value in ("1.4.0.5", "1.4.127.255", "1.4.0.0/24", "1.4.0.0/17"):
        assert found(value) == ["1.4.0.0/17"], value
    # an IPv4-mapped IPv6 form is the IPv4 address or network it writes, as stored
    for value in ("::ffff:1.4.0.5", "::ffff:1.4.0.0/120", "::FFFF:0104:0005"):
        assert found(value) == ["1.4.0.0/17"], value
    for value in ("1.4.128.1", "1.4.0.0/16", "1.0.0.0/8"):  # outside it, or wider than it
        assert "1.4.0.0/17" not in found(value), value
    assert found("2a06:e487:ffff::1") == ["2a06:e480::/29"]
    assert found("2a06:e488::1") == []
