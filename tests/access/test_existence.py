"""An organisation a caller cannot see answers as one that does not exist: no 403 or
"is not a national body" that would confirm it is there."""

from __future__ import annotations

import pytest


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.json()["detail"].replace("kz-bank", "X") == b.json()["detail"].replace(
        "no-such-org", "X"
    ), (a.text, b.text)


@pytest.mark.parametrize(
    "method,url,body",
    [
        ("post", "/api/v1/contacts", {"org": "{slug}", "name": "A", "email": "a@example.org"}),
        ("post", "/api/v1/organizations/uz-telecom/shares", {"org": "{slug}"}),
        ("post", "/api/v1/users", {"username": "newcomer", "org": "{slug}", "role": "reader"}),
        ("post", "/api/v1/cases", {"title": "T", "participants": ["{slug}"]}),
        ("post", "/api/v1/assets/import?org={slug}", [{"value": "192.0.2.0/28"}]),
    ],
)
def test_a_hidden_organisation_answers_as_an_unknown_one(client, auth, method, url, body) -> None:  # type: ignore[no-untyped-def]
    def call(slug: str):  # type: ignore[no-untyped-def]
        filled = url.replace("{slug}", slug)
        payload = _fill(body, slug)
        user = "uz-admin" if "users" in url else "uz-analyst"
        return getattr(client, method)(filled, json=payload, headers=auth[user])

    hidden, unknown = call("kz-bank"), call("no-such-org")
    # the organisation is named in the body or the query: a fault of that field
    assert hidden.status_code == 422, hidden.text
    assert hidden.json()["errors"][0]["field"] in ("org", "participants"), hidden.text
    _same(hidden, unknown)


def _fill(body, slug: str):  # type: ignore[no-untyped-def]
    if isinstance(body, dict):
        return {k: _fill(v, slug) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, slug) for v in body]
    return body.replace("{slug}", slug) if isinstance(body, str) else body


def test_submitting_for_another_organisation_is_refused_alike(client, auth) -> None:  # type: ignore[no-untyped-def]
    answers = [
        client.post(
            "/api/v1/intake",
            params={"as": slug, "format": "intelmq"},
            content=b'{"source.ip": "192.0.2.1", "classification.type": "scanner"}\n',
            headers=auth["uz-analyst"],
        )
        for slug in ("kz-bank", "no-such-org")
    ]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json()["detail"] == answers[1].json()["detail"]


def test_a_hidden_parent_answers_as_an_unknown_one(client, auth) -> None:  # type: ignore[no-untyped-def]
    def add(parent: str):  # type: ignore[no-untyped-def]
        body = {"slug": "uz-newcomer", "kind": "owner", "name_en": "X", "parent": parent}
        return client.post("/api/v1/organizations", json=body, headers=auth["uz-analyst"])

    hidden, unknown = add("kz-bank"), add("no-such-org")
    assert hidden.status_code == unknown.status_code == 422
    assert hidden.json()["detail"].replace("kz-bank", "X") == unknown.json()["detail"].replace(
        "no-such-org", "X"
    )


def test_an_unknown_name_costs_a_password_check_too(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Answering an unknown name at once would tell, by the time taken, which names exist.
    from concord.access import service as access
    from concord.errors import Unauthorized

    checked: list[str] = []
    real = access._hasher

    class Counting:
        def __init__(self, hasher) -> None:  # type: ignore[no-untyped-def]
            self.hasher = hasher

        def verify(self, stored: str, password: str) -> bool:
            checked.append(stored)
            return self.hasher.verify(stored, password)

    monkeypatch.setattr(access, "_hasher", lambda fast: Counting(real(fast)))
    for name in ("kz-reader", "nobody-at-all"):
        with pytest.raises(Unauthorized):
            access.authenticate(session, name, "a wrong guess", None)
    assert len(checked) == 2
