"""The cases API over HTTP: problem+json errors, workflow, visibility and permissions."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.cases.test_service import add_event

PROBLEM = "application/problem+json"


def open_case(client, headers, **body):  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/cases", json={"title": "Phishing wave", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_read_and_visibility(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(
        client,
        auth["kz-analyst"],
        summary="Lures in Russian",
        severity="high",
        techniques=["T1566"],
    )
    assert case["status"] == "new" and case["tlp"] == "amber" and case["severity"] == "high"
    assert case["origin_org"] == "kz-cert" and case["participants"] == ["kz-cert"]
    assert case["techniques"] == [{"technique_id": "T1566", "name": "Phishing"}]
    assert [t["kind"] for t in case["timeline"]] == ["create", "participant", "technique"]
    url = f"/api/v1/cases/{case['id']}"
    assert client.get(url, headers=auth["centre-reader"]).status_code == 200
    hidden = client.get(url, headers=auth["uz-analyst"])
    assert hidden.status_code == 404 and hidden.headers["content-type"].startswith(PROBLEM)
    assert client.get(url).status_code == 401
    listed = client.get("/api/v1/cases", headers=auth["uz-analyst"]).json()
    assert listed["items"] == []

    r = client.post(f"{url}/participants", json={"org": "uz-cert"}, headers=auth["kz-analyst"])
    assert r.status_code == 200 and r.json()["participants"] == ["kz-cert", "uz-cert"]
    got = client.get(url, headers=auth["uz-analyst"]).json()
    assert got["summary"] == "Lures in Russian"
    items = client.get("/api/v1/cases", headers=auth["uz-analyst"]).json()["items"]
    assert [i["id"] for i in items] == [case["id"]]


def test_workflow_over_patch(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(client, auth["centre-analyst"])
    url = f"/api/v1/cases/{case['id']}"
    h = auth["centre-analyst"]
    r = client.patch(url, json={"status": "resolved"}, headers=h)
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert "triage" in r.json()["detail"]
    for status in ("triage", "in-progress", "resolved"):
        r = client.patch(url, json={"status": status}, headers=h)
        assert r.status_code == 200, r.text
    assert r.json()["resolved_at"] is not None
    r = client.patch(url, json={"status": "closed", "severity": "low"}, headers=h)
    assert r.status_code == 200 and r.json()["closed_at"] is not None
    r = client.patch(url, json={"title": "Renamed"}, headers=h)
    assert r.status_code == 409  # closed: reopen first
    r = client.patch(url, json={"status": "in-progress", "title": "Renamed"}, headers=h)
    body = r.json()
    assert body["status"] == "in-progress" and body["title"] == "Renamed"
    assert body["resolved_at"] is None and body["closed_at"] is None
    r = client.patch(url, json={"assignee": "centre-admin"}, headers=h)
    assert r.json()["assignee"] == "centre-admin"
    r = client.patch(url, json={"assignee": None}, headers=h)
    assert r.json()["assignee"] is None
    kinds = [t["kind"] for t in r.json()["timeline"]]
    assert kinds.count("status") == 5 and kinds.count("assign") == 2


def test_invalid_input_is_a_problem_with_its_location(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["centre-analyst"]
    r = client.post("/api/v1/cases", json={"title": "x", "severity": "urgent"}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["pointer"] == "/body/severity"
    # a choice is read with the rest of the body: its fault told with theirs
    r = client.post(
        "/api/v1/cases",
        json={"title": "", "severity": "urgent", "event_ids": [True], "foo": 1},
        headers=h,
    )
    assert r.status_code == 422
    faults = r.json()["errors"]
    assert [e["pointer"] for e in faults] == [
        "/body/title",
        "/body/severity",
        "/body/event_ids/0",
        "/body/foo",
    ]
    assert faults[1]["detail"] == (
        "unknown severity 'urgent'; use one of low, medium, high, critical"
    )
    patch = client.patch("/api/v1/cases/1", json={"status": "bogus", "severity": "HUGE"}, headers=h)
    assert [e["pointer"] for e in patch.json()["errors"]] == ["/body/status", "/body/severity"]
    r = client.post("/api/v1/cases", json={"summary": "no title"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/title"
    # every fault of the body at once, each with its place and its reason
    body = {"title": " ", "event_ids": [111], "indicators": ["198.51.100.88"], "tlp": "blue"}
    r = client.post("/api/v1/cases", json=body, headers=h)
    assert r.status_code == 422
    assert [(e["field"], e["detail"]) for e in r.json()["errors"]] == [
        ("title", "a case needs a title"),
        ("event_ids", "no events 111"),
        ("indicators", "no indicators 198.51.100.88"),
        ("tlp", r.json()["errors"][3]["detail"]),
    ]
    assert "blue" in r.json()["errors"][3]["detail"]
    assert r.json()["detail"] == "a case needs a title"  # the first, as before
    case = open_case(client, h)
    url = f"/api/v1/cases/{case['id']}"
    r = client.post(f"{url}/techniques", json={"technique_id": "T15"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "technique_id"
    r = client.post(f"{url}/participants", json={}, headers=h)
    assert r.status_code == 422
    r = client.post(f"{url}/participants", json={"org": "kz-bank"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org"
    r = client.post(f"{url}/events", json={"event_ids": [12345]}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "event_ids"
    # unlinking takes query parameters, and its faults are named as such
    r = client.delete(f"{url}/events", params={"event_id": -1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/event_id"
    r = client.get("/api/v1/cases", params={"status": "open"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    r = client.get("/api/v1/cases/999", headers=h)
    assert r.status_code == 404


def test_comments_techniques_and_links(client, auth, session: Session) -> None:  # type: ignore[no-untyped-def]
    event = add_event(session, "kz-cert", "amber", "192.0.2.44")
    session.commit()
    case = open_case(client, auth["kz-analyst"])
    url = f"/api/v1/cases/{case['id']}"
    h = auth["kz-analyst"]
    r = client.post(f"{url}/comments", json={"text": "Bank SOC confirms."}, headers=h)
    assert r.status_code == 201 and r.json()["kind"] == "comment"
    assert r.json()["actor"] == "kz-analyst" and r.json()["text"] == "Bank SOC confirms."
    r = client.post(f"{url}/comments", json={"text": ""}, headers=h)
    assert r.status_code == 422
    r = client.post(
        f"{url}/techniques", json={"technique_id": "t1566.002", "name": "Link"}, headers=h
    )
    assert r.status_code == 422 and "Spearphishing Link" in r.json()["detail"]
    r = client.post(
        f"{url}/techniques",
        json={"technique_id": "t1566.002", "name": "spearphishing  link"},
        headers=h,
    )
    assert r.json()["techniques"] == [{"technique_id": "T1566.002", "name": "Spearphishing Link"}]
    r = client.post(
        f"{url}/events", json={"event_ids": [event.id], "indicators": ["192.0.2.44"]}, headers=h
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["id"] for e in body["events"]] == [event.id]
    assert body["indicators"] == [{"kind": "ipv4", "value": "192.0.2.44"}]
    link = next(t for t in body["timeline"] if t["kind"] == "link")
    assert link["detail"]["events"] == [event.id]
    # UZ joins: the case is visible, the KZ event behind it is not.
    client.post(f"{url}/participants", json={"org": "uz-cert"}, headers=h)
    seen = client.get(url, headers=auth["uz-analyst"]).json()
    assert seen["events"] == [] and "hidden_events" not in seen
    assert "192.0.2.44" not in str(seen)


def test_who_may_write(client, auth) -> None:  # type: ignore[no-untyped-def]
    for user in ("centre-reader", "kz-reader", "kz-bank-contact"):
        r = client.post("/api/v1/cases", json={"title": "x"}, headers=auth[user])
        assert r.status_code == 403, user
    assert client.post("/api/v1/cases", json={"title": "x"}).status_code == 401
    case = open_case(client, auth["kz-analyst"], tlp="green")
    url = f"/api/v1/cases/{case['id']}"
    # UZ sees a GREEN case but takes no part in it.
    assert client.get(url, headers=auth["uz-analyst"]).status_code == 200
    r = client.post(f"{url}/comments", json={"text": "hi"}, headers=auth["uz-analyst"])
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    client.post(f"{url}/participants", json={"org": "uz-cert"}, headers=auth["centre-analyst"])
    r = client.post(f"{url}/comments", json={"text": "hi"}, headers=auth["uz-analyst"])
    assert r.status_code == 201
    # Only the centre and the originator change who receives the case.
    r = client.patch(url, json={"tlp": "red"}, headers=auth["uz-analyst"])
    assert r.status_code == 403
    client.post(f"{url}/participants", json={"org": "ccc"}, headers=auth["centre-analyst"])
    r = client.delete(f"{url}/participants", params={"org": "ccc"}, headers=auth["uz-admin"])
    assert r.status_code == 403
    r = client.delete(f"{url}/participants", params={"org": "uz-cert"}, headers=auth["kz-admin"])
    assert r.status_code == 204
    assert client.get(url, headers=auth["uz-analyst"]).status_code == 200  # still GREEN


def test_a_participating_state_withdraws_itself(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(client, auth["kz-analyst"], participants=["uz-cert"])
    url = f"/api/v1/cases/{case['id']}"
    assert client.get(url, headers=auth["uz-analyst"]).status_code == 200
    r = client.delete(f"{url}/participants", params={"org": "uz-cert"}, headers=auth["uz-analyst"])
    assert r.status_code == 204
    # the AMBER case went with the share that joining gave
    assert client.get(url, headers=auth["uz-analyst"]).status_code == 404
    body = client.get(url, headers=auth["kz-analyst"]).json()
    assert body["participants"] == ["kz-cert"]
    left = [t for t in body["timeline"] if t["kind"] == "participant"][-1]
    assert left["actor"] == "uz-analyst" and left["detail"]["removed"] is True
    # the originator cannot leave its own case
    r = client.delete(f"{url}/participants", params={"org": "kz-cert"}, headers=auth["kz-analyst"])
    assert r.status_code == 409


def test_narrowing_out_of_ones_own_view_answers_204(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(client, auth["kz-analyst"])
    url = f"/api/v1/cases/{case['id']}"
    r = client.patch(url, json={"tlp": "amber+strict"}, headers=auth["centre-analyst"])
    assert r.status_code == 204
    assert client.get(url, headers=auth["centre-analyst"]).status_code == 404
    assert client.get(url, headers=auth["kz-analyst"]).json()["tlp"] == "amber+strict"


def test_the_centre_leaves_a_strict_case_and_a_wider_tlp_to_its_source(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(client, auth["kz-analyst"], tlp="amber+strict", participants=["ccc"])
    url = f"/api/v1/cases/{case['id']}"
    h = auth["centre-analyst"]
    assert client.get(url, headers=h).status_code == 200
    r = client.patch(url, json={"tlp": "clear"}, headers=h)
    assert r.status_code == 403 and "organisation that opened" in r.json()["detail"]
    r = client.post(f"{url}/participants", json={"org": "uz-cert"}, headers=h)
    assert r.status_code == 403
    assert client.get(url, headers=auth["uz-analyst"]).status_code == 404
    # still a participant: the centre comments and works the case
    assert client.post(f"{url}/comments", json={"text": "seen"}, headers=h).status_code == 201
    # an AMBER case the centre passes on, but its TLP is made wider by its source only
    amber = open_case(client, auth["kz-analyst"])
    url = f"/api/v1/cases/{amber['id']}"
    r = client.post(f"{url}/participants", json={"org": "uz-cert"}, headers=h)
    assert r.status_code == 200
    r = client.patch(url, json={"tlp": "green"}, headers=h)
    assert r.status_code == 403 and "less strict" in r.json()["detail"]
    assert client.patch(url, json={"tlp": "green"}, headers=auth["kz-analyst"]).status_code == 200


def test_red_case_over_the_api(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(client, auth["kz-analyst"], tlp="red", participants=["uz-cert"])
    url = f"/api/v1/cases/{case['id']}"
    for user in ("kz-admin", "centre-admin", "uz-analyst"):
        assert client.get(url, headers=auth[user]).status_code == 404, user
    r = client.post(f"{url}/participants", json={"user": "uz-analyst"}, headers=auth["kz-analyst"])
    assert r.status_code == 200 and r.json()["named_users"] == ["uz-analyst"]
    assert client.get(url, headers=auth["uz-analyst"]).status_code == 200
    assert client.get(url, headers=auth["uz-admin"]).status_code == 404


def test_list_filters_and_cursor(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["centre-analyst"]
    ids = [
        open_case(client, h, title=f"Case {i}", severity="critical" if i % 2 else "low")["id"]
        for i in range(5)
    ]
    open_case(client, auth["kz-analyst"], title="From Kazakhstan")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, "severity": "critical", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/cases", params=params, headers=h).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [ids[1], ids[3]]
    found = client.get("/api/v1/cases", params={"q": "kazakh"}, headers=h).json()["items"]
    assert [c["title"] for c in found] == ["From Kazakhstan"]
    assert found[0]["participants"] == ["kz-cert"]


def test_an_assignee_outside_the_case_answers_as_an_unknown_name(client, auth) -> None:  # type: ignore[no-untyped-def]
    case = open_case(client, auth["kz-analyst"])
    url = f"/api/v1/cases/{case['id']}"
    answers = {
        name: client.patch(url, json={"assignee": name}, headers=auth["kz-analyst"]).json()
        for name in ("uz-analyst", "nobody-here")
    }
    details = {n: a["detail"].replace(n, "NAME") for n, a in answers.items()}
    assert details["uz-analyst"] == details["nobody-here"], answers
    assert "participating organisation" in details["uz-analyst"]
    ok = client.patch(url, json={"assignee": "kz-admin"}, headers=auth["kz-analyst"])
    assert ok.status_code == 200 and ok.json()["assignee"] == "kz-admin"


def test_a_resolution_says_how_a_case_ended(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["kz-analyst"]
    case = open_case(client, h)
    url = f"/api/v1/cases/{case['id']}"
    assert case["resolution"] is None
    # not while the case is open
    r = client.patch(url, json={"status": "triage", "resolution": "duplicate"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "resolution"
    r = client.patch(url, json={"resolution": "duplicate"}, headers=h)
    assert r.status_code == 422
    r = client.patch(url, json={"status": "closed", "resolution": "dupe"}, headers=h)
    assert r.status_code == 422 and "false-positive" in r.json()["detail"]
    assert client.get(url, headers=h).json()["status"] == "new"  # nothing half-done
    r = client.patch(url, json={"status": "closed", "resolution": "false-positive"}, headers=h)
    body = r.json()
    assert body["status"] == "closed" and body["resolution"] == "false-positive"
    closing = [t for t in body["timeline"] if t["kind"] == "status"][-1]
    assert closing["detail"] == {"from": "new", "to": "closed", "resolution": "false-positive"}
    # a closed case is reopened before it is told otherwise; reopening forgets how it ended
    r = client.patch(url, json={"resolution": "remediated"}, headers=h)
    assert r.status_code == 409
    r = client.patch(url, json={"status": "in-progress"}, headers=h)
    assert r.json()["resolution"] is None
    r = client.patch(url, json={"status": "resolved", "resolution": "mitigated"}, headers=h)
    assert r.json()["resolution"] == "mitigated"
    # on a resolved case it may be corrected, and closing keeps it
    r = client.patch(url, json={"resolution": "remediated"}, headers=h)
    assert r.json()["resolution"] == "remediated"
    r = client.patch(url, json={"status": "closed"}, headers=h)
    assert r.json()["resolution"] == "remediated"
    # null clears it, as an empty text does
    client.patch(url, json={"status": "in-progress"}, headers=h)
    client.patch(url, json={"status": "resolved", "resolution": "mitigated"}, headers=h)
    assert client.patch(url, json={"resolution": None}, headers=h).json()["resolution"] is None


def test_if_match_changes_only_the_case_one_read(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["kz-analyst"]
    case = open_case(client, h)
    url = f"/api/v1/cases/{case['id']}"
    read = client.get(url, headers=h)
    etag = read.headers["ETag"]
    assert etag == f'"v{read.json()["version"]}"'
    # a colleague comments meanwhile: the case changed
    client.post(f"{url}/comments", json={"text": "looking at it"}, headers=auth["kz-admin"])
    r = client.patch(url, json={"severity": "high"}, headers={**h, "If-Match": etag})
    assert r.status_code == 412 and r.headers["content-type"].startswith(PROBLEM)
    assert "read it again" in r.json()["detail"]
    again = client.get(url, headers=h)
    assert again.json()["severity"] == "medium"
    r = client.patch(
        url, json={"severity": "high"}, headers={**h, "If-Match": again.headers["ETag"]}
    )
    assert r.status_code == 200 and r.json()["severity"] == "high"
    assert r.headers["ETag"] != again.headers["ETag"]
    assert r.headers["ETag"] == client.get(url, headers=h).headers["ETag"]
    # any version, and no condition at all, as before
    assert client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": "*"}).is_success
    assert client.patch(url, json={"severity": "medium"}, headers=h).is_success
    weak = client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": 'W/"v1"'})
    assert weak.status_code == 412
    now = client.get(url, headers=h).headers["ETag"]
    listed = client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": f'"v1", {now}'})
    assert listed.status_code == 200
    # an ETag is compared as it is written: "7" is not "v7"
    version = client.get(url, headers=h).headers["ETag"].strip('"').removeprefix("v")
    # 7, 07, and a superscript 2, a digit to str.isdigit that int() cannot read
    for written in (f'"{version}"'.encode(), f'"v0{version}"'.encode(), b'"v\xb2"'):
        other = client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": written})
        assert other.status_code == 412, (written, other.text)
    bad = client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": "yesterday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/header/If-Match"


def test_null_is_refused_for_a_field_it_cannot_clear(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["kz-analyst"]
    case = open_case(client, h, severity="high")
    url = f"/api/v1/cases/{case['id']}"
    for name in ("status", "severity", "title", "summary", "tlp"):
        r = client.patch(url, json={name: None}, headers=h)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), name
        (error,) = r.json()["errors"]
        assert error["pointer"] == f"/body/{name}", r.text
        assert error["detail"].startswith(f"{name} cannot be null"), r.text
    after = client.get(url, headers=h).json()
    assert (after["severity"], after["version"]) == ("high", case["version"])
    # null still clears what it clears
    assert client.patch(url, json={"assignee": None}, headers=h).status_code == 200


def test_a_technique_of_a_new_case_is_named_by_the_body_s_field(client, auth) -> None:  # type: ignore[no-untyped-def]
    for technique in ("T9999", "phishing"):
        r = client.post(
            "/api/v1/cases",
            json={"title": "Unknown technique", "techniques": [technique]},
            headers=auth["kz-analyst"],
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "techniques", r.text


def test_a_weak_etag_is_told_to_match_nothing(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["kz-analyst"]
    case = open_case(client, h)
    url = f"/api/v1/cases/{case['id']}"
    now = client.get(url, headers=h).headers["ETag"]
    for if_match in (f"W/{now}", f'W/{now}, "v999"'):
        r = client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": if_match})
        assert r.status_code == 412, r.text
        detail = r.json()["detail"]
        assert "weak ETag" in detail and "changed since" not in detail, detail
    assert client.get(url, headers=h).json()["severity"] == "medium"
    # a weak tag beside the strong one that matches does not stand in the way
    r = client.patch(url, json={"severity": "low"}, headers={**h, "If-Match": f"W/{now}, {now}"})
    assert r.status_code == 200, r.text
