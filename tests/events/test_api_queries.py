"""The events list reads its filters as its search applies them, and refuses filters that no
event can match rather than answering an empty page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Network
from tests.events.test_correlation import C2_IP, Auth, report, test_format  # noqa: F401

EVENTS = "/api/v1/events"


def test_a_country_with_spaces_around_it_finds_what_it_names(
    client: TestClient, auth: Auth, network: Network
) -> None:
    report(network["kz-analyst"], f"ipv4={C2_IP}")
    for country in ("KZ", " KZ", "kz "):
        r = client.get(EVENTS, params={"country": country}, headers=auth["centre-analyst"])
        assert r.status_code == 200 and len(r.json()["items"]) == 1, (country, r.text)


def test_filters_no_event_can_match_are_refused_where_they_are(
    client: TestClient, auth: Auth
) -> None:
    h = auth["kz-reader"]
    for params, where in (
        ({"since": "2026-12-10", "until": "2026-12-01"}, {"pointer": "/query/until"}),
        (
            {"since": "2026-12-01T10:00:00Z", "until": "2026-12-01T10:00:00Z"},
            {"pointer": "/query/until"},
        ),
        ({"class": "fraud", "type": "brute-force"}, {"field": "type"}),
        ({"country": "ZZ"}, {"field": "country"}),  # two letters, but no state's
        ({"value": "10.0.0.0/33"}, {"field": "value"}),
        ({"value": "2001:db8::/129"}, {"field": "value"}),
    ):
        r = client.get(EVENTS, params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        error = r.json()["errors"][0]
        assert {k: error.get(k) for k in where} == where, r.text
    for params in (
        {"since": "2026-12-01", "until": "2026-12-01"},  # a bare day: that whole day
        {"class": "intrusion-attempts", "type": "brute-force"},
        {"value": "https://example.com/10.0.0.0/33"},  # a URL, searched as typed
        {"value": "203.0.113.7/index.php"},  # an address and a path, likewise
        {"value": "203.0.113.7/"},
        {"value": "198.51.100.7/24"},  # the network the address is in
    ):
        assert client.get(EVENTS, params=params, headers=h).status_code == 200, params


def test_an_empty_filter_is_refused_not_taken_as_absent(client: TestClient, auth: Auth) -> None:
    for name in ("class", "type", "country", "value"):
        r = client.get(f"{EVENTS}?{name}=", headers=auth["kz-reader"])
        assert r.status_code == 422, (name, r.text)
        assert r.json()["errors"][0]["pointer"] == f"/query/{name}"
