"""The intake API reads its query parameters strictly: a boolean is true or false, and an
empty value is no way of leaving a parameter out."""

from __future__ import annotations

from tests.conftest import FIXTURES

STIX_C2 = FIXTURES / "stix" / "indicator-for-c2-ip-address.json"
INTAKE = "/api/v1/intake"


def _send(client, headers, **params):  # type: ignore[no-untyped-def]
    return client.post(
        INTAKE,
        params=params,
        headers={**headers, "content-type": "application/json", "x-filename": "c2.json"},
        content=STIX_C2.read_bytes(),
    )


def test_a_boolean_is_true_or_false_and_nothing_else(client, auth) -> None:  # type: ignore[no-untyped-def]
    for value in ("yes", "1", "on", "y"):
        r = _send(client, auth["kz-analyst"], share_owners=value)
        assert r.status_code == 422, (value, r.text)
        assert r.json()["errors"][0]["pointer"] == "/query/share_owners"
        assert "true or false" in r.json()["detail"]
    assert client.get("/api/v1/events", headers=auth["kz-analyst"]).json()["items"] == []
    for value in ("true", "True", "false"):
        r = _send(client, auth["kz-analyst"], share_owners=value)
        assert r.status_code == 200, (value, r.text)


def test_an_empty_value_is_refused_naming_the_parameter(client, auth) -> None:  # type: ignore[no-untyped-def]
    for name in ("tlp", "format", "as", "share_owners"):
        r = _send(client, auth["kz-analyst"], **{name: ""})
        assert r.status_code == 422, (name, r.text)
        assert r.json()["errors"][0]["pointer"] == f"/query/{name}", r.text
        assert "is empty" in r.json()["detail"]
    assert client.get("/api/v1/events", headers=auth["kz-analyst"]).json()["items"] == []
    # a raw upload is any type: no JSON body is asked of it
    r = client.post(
        INTAKE,
        headers={**auth["kz-analyst"], "content-type": "text/plain", "x-filename": "c2.json"},
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 200, r.text


def test_every_fault_of_the_query_string_is_told_at_once(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"{INTAKE}?tlp=&colour=red&share_owners=yes&format=stix&format=misp&as=",
        headers={**auth["kz-analyst"], "content-type": "application/json", "x-filename": "c2.json"},
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    told = r.json()["errors"]
    assert [e["pointer"] for e in told] == [
        "/query/tlp",
        "/query/colour",
        "/query/share_owners",
        "/query/format",
        "/query/as",
    ]
    assert [e["detail"] for e in told] == [
        "the query parameter 'tlp' is empty: give a value or leave it out",
        told[1]["detail"],
        "the query parameter 'share_owners' is true or false, not 'yes'",
        "the query parameter 'format' is given more than once",
        "the query parameter 'as' is empty: give a value or leave it out",
    ]
    assert told[1]["detail"].startswith("unknown query parameter 'colour'; this route takes: ")
    assert r.json()["detail"] == told[0]["detail"]
    assert client.get("/api/v1/events", headers=auth["kz-analyst"]).json()["items"] == []
