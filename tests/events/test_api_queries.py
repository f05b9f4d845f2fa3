"""The events list reads its filters as its search applies them, and refuses filters that no
event can match rather than answering an empty page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx import Response

from concord.events.rsit import RSIT
from concord.intake.records import ObservableKind
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
        ({"class": "fraud", "type": "brute-force"}, {"field": "type", "pointer": "/query/type"}),
        # two letters, but no state's
        ({"country": "ZZ"}, {"field": "country", "pointer": "/query/country"}),
        ({"value": "10.0.0.0/33"}, {"field": "value", "pointer": "/query/value"}),
        ({"value": "2001:db8::/129"}, {"field": "value", "pointer": "/query/value"}),
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


DATE_HINT = "use YYYY-MM-DD or a time such as 2024-03-10T23:30:00Z"
NO_CLASS = "unknown RSIT class 'bogus'; use one of " + ", ".join(RSIT)
NO_STATE = "invalid country code 'ZZ': use ISO 3166-1 alpha-2, such as KZ"
NOT_AFTER = "until must come after since: no event happened in between"
LEAVE_OUT = (
    "pages the list of cross-state indicators; with value, every indicator of that value is "
    "answered at once, so leave it out"
)


def faults(r: Response) -> list[dict[str, str]]:
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    return r.json()["errors"]


def test_a_date_and_a_state_at_fault_are_told_together(client: TestClient, auth: Auth) -> None:
    r = client.get(
        EVENTS, params={"since": "2024-13-01", "country": "ZZ"}, headers=auth["kz-reader"]
    )
    assert faults(r) == [
        {
            "pointer": "/query/since",
            "field": "since",
            "detail": f"invalid date '2024-13-01'; {DATE_HINT}",
        },
        {"field": "country", "pointer": "/query/country", "detail": NO_STATE},
    ]
    assert r.json()["detail"] == f"invalid date '2024-13-01'; {DATE_HINT}"  # the first


def test_every_fault_of_a_search_is_told_at_once_each_at_its_place(
    client: TestClient, auth: Auth
) -> None:
    """What FastAPI reads (dates, numbers) and what the search checks (choices, the state,
    the owner, the value), in one answer, each as it is told alone."""
    params = {
        "value": "10.0.0.0/33",
        "since": "yesterday",
        "until": "2024-W10",
        "class": "bogus",
        "type": "bogus",
        "country": "ZZ",
        "owner": "nosuch",
        "submission": "0",
        "cursor": "!!!",
        "limit": "1001",
    }
    assert faults(client.get(EVENTS, params=params, headers=auth["kz-reader"])) == [
        {
            "pointer": "/query/since",
            "field": "since",
            "detail": f"invalid date 'yesterday'; {DATE_HINT}",
        },
        {
            "pointer": "/query/until",
            "field": "until",
            "detail": f"invalid date '2024-W10'; {DATE_HINT}",
        },
        {
            "pointer": "/query/submission",
            "field": "submission",
            "detail": "Input should be greater than or equal to 1",
        },
        {"field": "cursor", "pointer": "/query/cursor", "detail": "invalid cursor"},
        {
            "pointer": "/query/limit",
            "field": "limit",
            "detail": "Input should be less than or equal to 1000",
        },
        {
            "field": "value",
            "pointer": "/query/value",
            "detail": "invalid IP network '10.0.0.0/33': the prefix length is at most 32 for "
            "IPv4 and 128 for IPv6",
        },
        {"field": "class", "pointer": "/query/class", "detail": NO_CLASS},
        {
            "field": "type",
            "pointer": "/query/type",
            "detail": "unknown RSIT type 'bogus', such as phishing or brute-force",
        },
        {"field": "country", "pointer": "/query/country", "detail": NO_STATE},
        {
            "field": "owner",
            "pointer": "/query/owner",
            "detail": "no organisation 'nosuch' among those you may see",
        },
    ]
    # numbers that are no numbers, and a blank value, likewise
    params = {"value": " ", "submission": "x", "limit": "abc", "owner": "kz-bank"}
    not_a_number = "Input should be a valid integer, unable to parse string as an integer"
    assert faults(client.get(EVENTS, params=params, headers=auth["uz-analyst"])) == [
        {"pointer": "/query/submission", "field": "submission", "detail": not_a_number},
        {"pointer": "/query/limit", "field": "limit", "detail": not_a_number},
        {"field": "value", "pointer": "/query/value", "detail": "the value is blank"},
        # hidden from this reader: told as one that does not exist
        {
            "field": "owner",
            "pointer": "/query/owner",
            "detail": "no organisation 'kz-bank' among those you may see",
        },
    ]


def test_a_rule_across_two_filters_is_told_once_both_read(client: TestClient, auth: Auth) -> None:
    h = auth["kz-reader"]
    for params, told in (
        # an unknown class: whether the type is of it cannot be said
        (
            {"class": "bogus", "type": "brute-force"},
            [{"field": "class", "pointer": "/query/class", "detail": NO_CLASS}],
        ),
        (
            {"class": "fraud", "type": "brute-force", "country": "ZZ"},
            [
                {
                    "field": "type",
                    "pointer": "/query/type",
                    "detail": "the RSIT type brute-force is of the class intrusion-attempts, "
                    "not fraud",
                },
                {"field": "country", "pointer": "/query/country", "detail": NO_STATE},
            ],
        ),
        # an unreadable bound: whether the period is empty cannot be said
        (
            {"since": "2026-12-10", "until": "soon"},
            [
                {
                    "pointer": "/query/until",
                    "field": "until",
                    "detail": f"invalid date 'soon'; {DATE_HINT}",
                }
            ],
        ),
        (
            {"since": "2026-12-10", "until": "2026-12-01", "country": "ZZ"},
            [
                {"field": "country", "pointer": "/query/country", "detail": NO_STATE},
                {"pointer": "/query/until", "field": "until", "detail": NOT_AFTER},
            ],
        ),
    ):
        assert faults(client.get(EVENTS, params=params, headers=h)) == told, params


def test_the_api_still_documents_what_it_reads_from_text(client: TestClient) -> None:
    """Dates and numbers are taken as text, to be told with the other faults; the OpenAPI
    description still says what they hold."""
    spec = client.get("/api/v1/openapi.json").json()["paths"]
    for path, name, schema in (
        ("/api/v1/events", "since", {"type": "string", "format": "date-time"}),
        ("/api/v1/events", "until", {"type": "string", "format": "date-time"}),
        ("/api/v1/events", "submission", {"type": "integer", "minimum": 1}),
        ("/api/v1/indicators", "limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ("/api/v1/events", "limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ):
        parameter = next(p for p in spec[path]["get"]["parameters"] if p["name"] == name)
        found = parameter["schema"]
        found = next((s for s in found.get("anyOf", []) if s["type"] != "null"), found)
        assert {k: found.get(k) for k in schema} == schema, (path, name, parameter)
    assert parameter["schema"]["default"] == 100 and parameter["description"] == "page size"


def test_an_indicator_lookup_tells_every_fault_at_once(client: TestClient, auth: Auth) -> None:
    h = auth["kz-analyst"]
    no_kind = "unknown indicator kind 'zzz'; use one of " + ", ".join(ObservableKind)
    for params, told in (
        # a blank value and an unknown kind
        (
            {"value": " ", "kind": "zzz"},
            [
                {"field": "value", "pointer": "/query/value", "detail": "the value is blank"},
                {"field": "kind", "pointer": "/query/kind", "detail": no_kind},
            ],
        ),
        # a value of another kind, and both paging parameters, which a lookup does not take
        (
            {"value": "abc", "kind": "ipv4", "cursor": "x", "limit": "5"},
            [
                {
                    "field": "value",
                    "pointer": "/query/value",
                    "detail": "'abc' is no ipv4 value: invalid IP address 'abc'",
                },
                {"pointer": "/query/cursor", "field": "cursor", "detail": f"'cursor' {LEAVE_OUT}"},
                {"pointer": "/query/limit", "field": "limit", "detail": f"'limit' {LEAVE_OUT}"},
            ],
        ),
        # a limit that cannot be read is told as such, once
        (
            {"value": C2_IP, "limit": "0"},
            [
                {
                    "pointer": "/query/limit",
                    "field": "limit",
                    "detail": "Input should be greater than or equal to 1",
                }
            ],
        ),
        # the list of cross-state indicators
        (
            {"kind": "zzz", "cursor": "!!!", "limit": "0"},
            [
                {"field": "kind", "pointer": "/query/kind", "detail": no_kind},
                {"field": "cursor", "pointer": "/query/cursor", "detail": "invalid cursor"},
                {
                    "pointer": "/query/limit",
                    "field": "limit",
                    "detail": "Input should be greater than or equal to 1",
                },
            ],
        ),
    ):
        assert faults(client.get("/api/v1/indicators", params=params, headers=h)) == told, params
    for params in ({"value": C2_IP, "kind": "ipv4"}, {"kind": "ipv4", "limit": "5"}, {}):
        assert client.get("/api/v1/indicators", params=params, headers=h).status_code == 200, params


EMPTY = "the query parameter {!r} is empty: give a value or leave it out"


def test_every_fault_of_a_query_string_is_told_at_once_in_its_order(
    client: TestClient, auth: Auth
) -> None:
    r = client.get(f"{EVENTS}?since=&limit=&colour=red", headers=auth["kz-reader"])
    told = faults(r)
    assert [e["pointer"] for e in told] == ["/query/since", "/query/limit", "/query/colour"]
    assert [e["detail"] for e in told[:2]] == [EMPTY.format("since"), EMPTY.format("limit")]
    assert told[2]["detail"].startswith("unknown query parameter 'colour'; this route takes: ")
    assert r.json()["detail"] == EMPTY.format("since")  # the first, as when told alone
    # in the order the query string gives them, a parameter given twice among them
    r = client.get(f"{EVENTS}?colour=red&limit=5&limit=6&since=", headers=auth["kz-reader"])
    told = faults(r)
    assert [e["pointer"] for e in told] == ["/query/colour", "/query/limit", "/query/since"]
    assert told[0]["detail"].startswith("unknown query parameter 'colour'")
    assert [e["detail"] for e in told[1:]] == [
        "the query parameter 'limit' is given more than once",
        EMPTY.format("since"),
    ]


def test_an_unknown_parameter_given_empty_is_told_once_as_unknown(
    client: TestClient, auth: Auth
) -> None:
    r = client.get(f"{EVENTS}?colour=&country=", headers=auth["kz-reader"])
    told = faults(r)
    assert [e["pointer"] for e in told] == ["/query/colour", "/query/country"]
    assert told[0]["detail"].startswith("unknown query parameter 'colour'")
    assert told[1]["detail"] == EMPTY.format("country")


def test_a_fault_named_by_its_filter_is_located_in_the_query_too(
    client: TestClient, auth: Auth
) -> None:
    """What the search tells by a filter's name, and what is read from the query string,
    are located alike in one answer; the name stays, as clients read it."""
    r = client.get(f"{EVENTS}?country=ZZ&since=2024-13-01", headers=auth["kz-reader"])
    assert faults(r) == [
        {
            "pointer": "/query/since",
            "field": "since",
            "detail": f"invalid date '2024-13-01'; {DATE_HINT}",
        },
        {"pointer": "/query/country", "field": "country", "detail": NO_STATE},
    ]
    assert all("pointer" in e for e in faults(r))
