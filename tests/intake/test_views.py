"""UI pages of intake, events, indicators and campaigns, through a signed-in browser session."""

from __future__ import annotations

import re

import pytest

from tests.conftest import FIXTURES, shared_file, sign_in
from tests.intake.test_service import scan_csv


def login(client, username: str) -> str:  # type: ignore[no-untyped-def]
    r = sign_in(client, username, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/intake")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def submit(client, csrf: str, name: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/intake",
        data={"csrf_token": csrf, **form},
        files={"file": (name, data, "application/octet-stream")},
    )


def test_intake_form_shows_the_receipt(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    data = scan_csv(
        [("2026-11-30 10:00:00", "203.0.113.70", 3389), ("bad time", "203.0.113.71", 3389)]
    )
    r = submit(client, csrf, "scan_rdp.csv", data, tlp="green")
    assert r.status_code == 200
    assert 'data-count="accepted">1<' in r.text and 'data-count="rejected">1<' in r.text
    assert "line 3, <code>timestamp</code>" in r.text  # the column, as the file names it
    again = submit(client, csrf, "scan_rdp.csv", data, tlp="green")
    assert 'data-count="duplicates">1<' in again.text
    assert "scan_rdp.csv" in client.get("/intake").text  # recent submissions


def test_receipt_counts_and_explains_skipped_records(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    data = (FIXTURES / "misp" / "57c4445b-c548-4654-af0b-4be3950d210f.json").read_bytes()
    r = submit(client, csrf, "event.json", data, tlp="green")
    assert 'data-count="accepted">3<' in r.text and 'data-count="skipped">6<' in r.text
    assert 'id="receipt-skipped"' in r.text
    plain = submit(
        client, csrf, "scan_rdp.csv", scan_csv([("2026-11-30 10:00:00", "192.0.2.9", 1)])
    )
    assert 'data-count="skipped"' not in plain.text  # only where something was skipped


def test_intake_form_errors_and_csrf(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    r = submit(client, csrf, "blob.bin", b"\x00\x01 junk", format="nonsense")
    assert r.status_code == 415 and "supported formats" in r.text
    assert '<option value="cert-eu"' in client.get("/intake").text  # a CSV feed, by name
    r = client.post(
        "/intake", data={"csrf_token": "forged"}, files={"file": ("a.csv", b"x", "text/csv")}
    )
    assert r.status_code == 403


def test_events_search_and_detail(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    submit(
        client,
        csrf,
        "ioc.json",
        (FIXTURES / "stix" / "indicator-for-c2-ip-address.json").read_bytes(),
        format="stix",
    )
    listing = client.get("/events")
    assert listing.status_code == 200 and "c2-server" in listing.text
    event_id = re.search(r'href="/events/(\d+)"', listing.text).group(1)
    detail = client.get(f"/events/{event_id}")
    assert detail.status_code == 200 and "Raw record" in detail.text
    assert "&#34;indicator&#34;" in detail.text  # the STIX object itself, escaped
    filtered = client.get("/events", params={"rsit_class": "fraud"})
    assert "No events match." in filtered.text
    bad = client.get("/events", params={"since": "yesterday"})
    assert bad.status_code == 422


@pytest.fixture
def correlated(client, network):  # type: ignore[no-untyped-def]
    """One address reported by KZ and UZ, correlated into a campaign."""
    from concord.db import session_factory
    from concord.events import correlation

    for user in ("kz-analyst", "uz-analyst"):
        client.cookies.clear()
        csrf = login(client, user)
        submit(
            client,
            csrf,
            "scan_rdp.csv",
            scan_csv([("2026-11-30 10:00:00", "146.185.0.42", 3389)]),
            tlp="green",
        )
    with session_factory()() as s:
        correlation.correlate(s)
        s.commit()
    client.cookies.clear()


def test_indicator_page_shows_sightings_across_states(client, correlated) -> None:  # type: ignore[no-untyped-def]
    login(client, "centre-analyst")
    page = client.get("/indicators", params={"value": "146.185.0.42"})
    assert page.status_code == 200
    assert "cross-state" in page.text and "KZ" in page.text and "UZ" in page.text
    assert "146.185.0.42" in client.get("/indicators").text  # the cross-state listing


def test_campaign_graph(client, correlated) -> None:  # type: ignore[no-untyped-def]
    login(client, "centre-analyst")
    listing = client.get("/campaigns")
    campaign = re.search(r'href="/campaigns/(\d+)"', listing.text).group(1)
    page = client.get(f"/campaigns/{campaign}")
    assert page.status_code == 200
    assert page.text.count('class="node event"') == 2
    indicators = page.text.count('class="node indicator"')  # the address, and its AS number
    assert indicators >= 1 and "146.185.0.42" in page.text
    assert page.text.count("<line ") == 2 * indicators
    assert client.get("/campaigns/999").status_code == 404


def test_russian_labels(client, network) -> None:  # type: ignore[no-untyped-def]
    login(client, "kz-analyst")
    client.post(
        "/language",
        data={
            "language": "ru",
            "csrf_token": re.search(
                r'name="csrf_token" value="([^"]+)"', client.get("/intake").text
            ).group(1),
        },
    )
    page = client.get("/intake")
    assert "Отправить отчёт" in page.text and "Кампании" in page.text


def test_upload_and_tlp_refusals_read_in_russian(client, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.config import reset_settings

    csrf = login(client, "kz-analyst")
    client.post("/language", data={"language": "ru", "csrf_token": csrf})
    data = scan_csv([("2026-11-30 10:00:00", f"192.0.2.{i}", 3389) for i in range(60)])
    bad_tlp = submit(client, csrf, "scan_rdp.csv", data, tlp="purple")
    assert "неизвестная метка TLP &#39;purple&#39;; используйте одну из:" in bad_tlp.text
    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", "1000")
    reset_settings()
    big = submit(client, csrf, "scan_rdp.csv", data)
    assert big.status_code == 413 and "файл превышает предел в 1000 байт" in big.text
    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", str(50 << 20))
    reset_settings()
    from concord.web.uploads import too_large

    assert too_large(50 << 20).message == (
        "the upload exceeds the limit of 50 MiB (52428800 bytes)"
    )


def test_event_search_dates_include_the_until_day_and_flag_an_inverted_range(
    client, network
) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    submit(client, csrf, "scan_rdp.csv", scan_csv([("2026-11-30 23:59:00", "203.0.113.80", 3389)]))
    day = client.get("/events", params={"since": "2026-11-30", "until": "2026-11-30"})
    assert "203.0.113.80" in day.text
    before = client.get("/events", params={"until": "2026-11-29"})
    assert "203.0.113.80" not in before.text and 'id="no-events"' in before.text
    inverted = client.get("/events", params={"since": "2026-12-01", "until": "2026-11-30"})
    assert 'id="inverted-range"' in inverted.text and 'id="no-events"' not in inverted.text
    bad = client.get("/events", params={"submission": "abc"})
    assert bad.status_code == 422
    assert "the submission number must be a whole number, not &#39;abc&#39;" in bad.text
    bad = client.get("/events", params={"before": "yesterday"})
    assert bad.status_code == 422 and "invalid page position" in bad.text
    # a zone that pushes a time past the years UTC holds is the user's fault, named
    for name, value in (
        ("since", "9999-12-31T23:59:59-14:00"),
        ("until", "0001-01-01T00:00:00+14:00"),
        ("until", "9999-12-31"),  # "until" a day means up to the next one
    ):
        far = client.get("/events", params={name: value})
        assert far.status_code == 422 and "is out of range in UTC" in far.text, value
    far = client.get("/events", params={"before": "9999-12-31T23:59:59-14:00_1"})
    assert far.status_code == 422 and "invalid page position" in far.text


def test_a_filter_that_cannot_be_read_keeps_the_search_form(client, network) -> None:  # type: ignore[no-untyped-def]
    login(client, "kz-analyst")
    for query, message in (
        ("country=KAZ", "KAZ"),
        ("since=notadate", "notadate"),
        ("rsit_class=bogus", "bogus"),
    ):
        r = client.get(f"/events?value=192.0.2.1&owner=kz-bank&{query}")
        assert r.status_code == 422, query
        assert 'class="form-error"' in r.text and message in r.text, query
        # what the user typed is still there, and the form is the page's own
        assert 'id="event-search"' in r.text and 'value="192.0.2.1"' in r.text
        assert 'value="kz-bank"' in r.text and 'id="no-events"' not in r.text


def test_event_list_is_newest_first_page_by_page(client, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.events import views

    monkeypatch.setattr(views, "PAGE", 2)
    csrf = login(client, "kz-analyst")
    times = ["2026-11-28 10:00:00", "2026-11-30 10:00:00", "2026-11-29 10:00:00"]
    rows = [(t, f"203.0.113.{90 + i}", 3389) for i, t in enumerate(times)]
    rows.append(("2026-11-30 10:00:00", "203.0.113.99", 3389))  # the same time as another
    submit(client, csrf, "scan.csv", scan_csv(rows))
    seen: list[str] = []
    url = "/events?since=2026-11-01"
    while url:
        page = client.get(url).text
        seen += re.findall(r"<code>(203\.0\.113\.\d+)</code>", page)
        # a later page leads back to the newest, the filters kept; the first does not
        newest = re.search(r'href="/events\?[^"]*since=2026-11-01[^"]*" id="newest-page"', page)
        assert bool(newest) == (url != "/events?since=2026-11-01"), page
        found = re.search(r'id="next-page" href="([^"]+)"|href="([^"]+)" id="next-page"', page)
        url = (found.group(1) or found.group(2)).replace("&amp;", "&") if found else ""
    assert seen == ["203.0.113.99", "203.0.113.91", "203.0.113.92", "203.0.113.90"]


def test_receipt_page_and_the_events_of_one_submission(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    first = submit(client, csrf, "a.csv", scan_csv([("2026-11-30 10:00:00", "203.0.113.81", 22)]))
    submit(client, csrf, "b.csv", scan_csv([("2026-11-30 10:00:00", "203.0.113.82", 22)]))
    number = re.search(r'href="/events\?submission=(\d+)"', first.text).group(1)
    listing = client.get("/intake")
    assert f'href="/intake/{number}"' in listing.text  # past submissions open
    receipt = client.get(f"/intake/{number}")
    assert receipt.status_code == 200 and "a.csv" in receipt.text
    assert 'data-count="accepted">1<' in receipt.text
    events = client.get("/events", params={"submission": number})
    assert "203.0.113.81" in events.text and "203.0.113.82" not in events.text
    assert 'id="submission-filter"' in events.text
    assert f'href="/intake/{number}"' in events.text
    client.cookies.clear()
    login(client, "uz-analyst")
    assert client.get(f"/intake/{number}").status_code == 404  # another state's submission
    # nor is its receipt linked from the events asked for by its number, or by no number
    for asked in (number, "99999", "abc"):
        other = client.get("/events", params={"submission": asked}).text
        assert 'id="submission-filter"' in other and f'href="/intake/{asked}"' not in other


def test_intake_form_keeps_the_chosen_tlp_and_format_after_an_error(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    r = client.post("/intake", data={"csrf_token": csrf, "tlp": "red", "format": "misp"})
    assert r.status_code == 422 and "choose a file to submit" in r.text
    assert '<option value="red" selected>' in r.text
    assert re.search(r'<option value="misp"[^>]*selected', r.text)
    assert '<option value="amber" selected>' not in r.text


def test_the_centre_reports_for_reporting_organisations_not_owners(client, network) -> None:  # type: ignore[no-untyped-def]
    login(client, "centre-analyst")
    choices = re.findall(
        r'<option value="([^"]+)"',
        client.get("/intake").text.split('name="as"')[1].split("</select>")[0],
    )
    assert "kz-cert" in choices and "kz-bank" not in choices


def test_the_intake_page_keeps_each_records_own_marking_unless_told(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    offered = client.get("/intake").text
    assert re.search(
        r'<option value="" title="as marked in the file [^"]+" selected>as marked', offered
    )
    data = shared_file("feeds/cert_eu_example.csv").read_bytes()
    r = submit(client, csrf, "cert_eu_example.csv", data)  # the TLP left as the page offers it
    assert r.status_code == 200 and 'data-count="accepted">' in r.text
    # the receipt and the list say the records kept their markings, not "TLP:AMBER"
    assert (
        'cert_eu_example.csv · csv · <span class="muted" title="TLP:AMBER">as marked in the file'
        in r.text
    )
    assert '<span class="muted" title="TLP:AMBER">as marked</span>' in client.get("/intake").text
    listed = client.get("/events?value=144.76.221.34").text
    assert "tlp-green" in listed  # the row marked green stays GREEN, as from the console
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, "uz-analyst")
    told = submit(client, csrf, "cert_eu_example.csv", data, tlp="amber")
    assert told.status_code == 200
    assert "tlp-amber" in client.get("/events?value=144.76.221.34").text  # declared: raised


def test_readers_get_no_intake_form(client, network) -> None:  # type: ignore[no-untyped-def]
    login(client, "kz-reader")
    page = client.get("/intake")
    assert 'id="intake-form"' not in page.text and 'id="read-only"' in page.text


def test_resubmission_at_another_tlp_says_so(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    data = scan_csv([("2026-11-30 10:00:00", "203.0.113.83", 3389)])
    submit(client, csrf, "scan.csv", data, tlp="green")
    again = submit(client, csrf, "scan.csv", data, tlp="amber")
    # never folded into the GREEN event: that would tell GREEN readers of the AMBER report
    assert 'data-count="accepted">1<' in again.text
    assert "submitted before at another TLP" in again.text


def test_owner_links_only_where_the_owner_page_opens(client, network, session) -> None:  # type: ignore[no-untyped-def]
    from tests.intake.test_service import give_prefix

    give_prefix(session, "kz-bank", "203.0.113.0/24")
    csrf = login(client, "kz-analyst")
    submit(
        client,
        csrf,
        "scan.csv",
        scan_csv([("2026-11-30 10:00:00", "203.0.113.84", 3389)]),
        tlp="green",
    )
    assert 'href="/organizations/kz-bank"' in client.get("/events").text
    client.cookies.clear()
    login(client, "uz-analyst")
    listing = client.get("/events")
    assert "kz-bank" not in listing.text  # an owner uz-cert cannot see is not named
    assert 'href="/organizations/kz-bank"' not in listing.text
    assert client.get("/organizations/kz-bank").status_code == 404


def test_the_centre_sees_each_correlation_alert_once(client, correlated) -> None:  # type: ignore[no-untyped-def]
    login(client, "centre-analyst")
    page = client.get("/indicators").text
    alerts = page[page.index('id="alerts"') : page.index("</section>", page.index('id="alerts"'))]
    assert alerts.count("146.185.0.42</code>") == 1 and "KZ, UZ" in alerts


def test_empty_indicator_and_campaign_pages_say_why(client, network) -> None:  # type: ignore[no-untyped-def]
    login(client, "kz-analyst")
    assert "two or more states" in client.get("/indicators").text
    assert 'id="no-campaigns"' in client.get("/campaigns").text


def test_event_page_names_the_class_and_the_service(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    real = shared_file("feeds/shadowserver/scan_ssh.csv").read_bytes()
    submit(client, csrf, "scan_ssh.csv", real, tlp="green")
    event_id = re.search(r'href="/events/(\d+)"', client.get("/events").text).group(1)
    detail = client.get(f"/events/{event_id}").text
    assert '<span title="vulnerable">Vulnerable</span> / ' in detail
    assert 'id="open-case"' in detail  # an analyst may open a case from it
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "kz-reader")
    assert 'id="open-case"' not in client.get(f"/events/{event_id}").text  # a reader may not
    csrf = login(client, "kz-analyst")
    assert re.search(r"<dd>\d+/tcp · ssh</dd>", detail), detail
    # a scan with no protocol column shows the port and service without a stray slash
    data = scan_csv([("2026-11-30 10:00:00", "203.0.113.72", 22)])
    submit(client, csrf, "scan_ssh-own.csv", data)
    event_id = re.search(r'href="/events/(\d+)"', client.get("/events?value=203.0.113.72").text)
    assert "<dd>22 · ssh</dd>" in client.get(f"/events/{event_id.group(1)}").text


def test_an_event_page_shows_what_the_source_reported_beside_the_fields(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    data = scan_csv([("2026-11-30 10:00:00", "203.0.113.73", 99999)])  # a port that is none
    submit(client, csrf, "scan_rdp.csv", data, tlp="green")
    event_id = re.search(r'href="/events/(\d+)"', client.get("/events?value=203.0.113.73").text)
    page = client.get(f"/events/{event_id.group(1)}").text
    assert 'id="extra"' in page
    assert "<dt><code>invalid.port</code></dt><dd>99999</dd>" in page


def test_a_receipt_that_added_no_event_offers_no_event_list(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    data = scan_csv([("2026-11-30 10:00:00", "203.0.113.90", 3389)])
    first = submit(client, csrf, "scan_rdp.csv", data, tlp="amber")
    assert 'id="receipt-events"' in first.text
    # another file of the same observation: its event folds into the one already held
    later = scan_csv([("2026-11-30 10:30:00", "203.0.113.90", 3389)])
    again = submit(client, csrf, "scan_rdp.csv", later, tlp="amber")
    assert 'data-count="duplicates">1<' in again.text and 'id="receipt-events"' not in again.text
    # the English receipt needs no plural agreement either
    assert "Events shared with the owners" not in again.text


def test_a_submission_with_every_record_rejected_says_nothing_was_taken_in(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    words = b"just some words\nand more\n"
    refused = submit(client, csrf, "notes.txt", words, format="stix", tlp="green")
    assert 'data-count="accepted">0<' in refused.text and 'data-count="rejected">1<' in refused.text
    said = '<p class="warn" id="receipt-status">Nothing was taken in:'
    assert said in refused.text
    good = submit(client, csrf, "scan_rdp.csv", scan_csv([("2026-11-30 10:00:00", "192.0.2.8", 1)]))
    assert 'data-count="accepted">1<' in good.text and 'id="receipt-status"' not in good.text
    rows = {
        name: status
        for name, status in re.findall(
            r'<td>([^<]+)</td><td>[^<]*</td>.*?<td data-status="done">(.*?)</td>',
            client.get("/intake").text,
        )
    }
    assert rows["scan_rdp.csv"] == "taken in"
    assert re.fullmatch(
        r'<span class="warn" title="[^"]+">nothing taken in</span>', rows["notes.txt"]
    )
    receipt = re.search(
        r'href="/intake/(\d+)">\d+</a></td><td>notes.txt', client.get("/intake").text
    )
    assert receipt and said in client.get(f"/intake/{receipt.group(1)}").text
    # the dashboard tells it in the same words; a file taken in well needs no word there
    dashboard = client.get("/").text
    listed = dict(re.findall(r'<li><a href="/intake/\d+">#\d+ ([^<]+)</a>(.*?)</li>', dashboard))
    assert '<span data-status="done"><span class="warn"' in listed["notes.txt"]
    assert "nothing taken in" in listed["notes.txt"] and "data-status" not in listed["scan_rdp.csv"]
    client.post("/language", data={"language": "ru", "next": "/intake", "csrf_token": csrf})
    assert "ничего не принято" in client.get("/intake").text
    assert "Ничего не принято:" in client.get(f"/intake/{receipt.group(1)}").text


def test_places_read_in_the_page_language(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    client.post("/language", data={"language": "ru", "next": "/intake", "csrf_token": csrf})
    submit(client, csrf, "scan_rdp.csv", scan_csv([("2026-11-30 10:00:00", "203.0.113.95", 3389)]))
    event_id = re.search(r'href="/events/(\d+)"', client.get("/events?value=203.0.113.95").text)
    page = client.get(f"/events/{event_id.group(1)}").text
    assert "scan_rdp.csv:строка 2" in page and ":line 2" not in page
    # the RSIT type by its name, the slug kept as the title
    named = '<span title="potentially-unwanted-accessible">Потенциально нежелательный'
    assert named in page and named in client.get("/events").text
    assert "<td>источник</td>" in page  # the observable's role
    # a mail cut short is placed at the line where it ends, not at a bare "/"
    mail = b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    receipt = submit(client, csrf, "report.eml", mail, format="email").text
    assert "<td>строка 4</td><td>составное сообщение обрезано" in receipt, receipt
    # a fault of the whole message is placed as such
    mail = b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nat 192.0.2.1\r\n"
    receipt = submit(client, csrf, "unbounded.eml", mail, format="email").text
    assert "весь файл" in receipt, receipt


def test_an_expired_intake_form_keeps_the_choices_and_asks_for_the_file_again(
    client, network
) -> None:  # type: ignore[no-untyped-def]
    login(client, "kz-analyst")
    r = submit(
        client,
        "from-a-page-before-the-session-changed",
        "scan_rdp.csv",
        scan_csv([("2026-11-30 10:00:00", "192.0.2.30", 3389)]),
        format="shadowserver-scan",
        tlp="green",
    )
    # the intake page again, not a dead end: the error beside the form, the choices kept
    assert r.status_code == 403 and 'id="intake-form"' in r.text
    assert 'class="form-error"' in r.text and "the form has expired" in r.text
    assert re.search(r'<option value="shadowserver-scan"[^>]*selected', r.text)
    assert '<option value="green" selected>' in r.text
    assert 'id="file-again"' in r.text  # the one thing a page cannot keep
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    again = submit(
        client,
        fresh,
        "scan_rdp.csv",
        scan_csv([("2026-11-30 10:00:00", "192.0.2.30", 3389)]),
        tlp="green",
    )
    assert again.status_code == 200 and 'data-count="accepted">1<' in again.text
    assert 'id="file-again"' not in again.text


def test_a_file_in_another_format_than_declared_is_named_so(client, network, auth) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    data = scan_csv([("2026-11-30 10:00:00", "192.0.2.31", 3389)])
    r = submit(client, csrf, "scan_rdp.csv", data, format="stix", tlp="green")
    assert r.status_code == 415
    said = "this file is not stix (it looks like shadowserver-scan)"
    assert said in r.text and "This file cannot be read" in r.text
    assert "Unsupported media type" not in r.text and 'id="receipt"' not in r.text
    assert "scan_rdp.csv line 1" in r.text  # where the declared format gave up
    assert re.search(r'<select name="format" aria-invalid="true"', r.text)
    # nothing was stored: no empty submission among the recent ones
    assert "scan_rdp.csv" not in client.get("/intake").text
    # the API says the same, with the places
    api = client.post(
        "/api/v1/intake",
        params={"format": "stix"},
        files={"file": ("scan_rdp.csv", data, "text/csv")},
        headers=auth["kz-analyst"],
    )
    assert api.status_code == 415 and api.json()["detail"].startswith(said)
    assert [e.get("field") or e.get("line") for e in api.json()["errors"]] == ["format", 1]
    # read as what it is, it goes in
    ok = submit(client, csrf, "scan_rdp.csv", data, tlp="green")
    assert 'data-count="accepted">1<' in ok.text


def test_a_file_whose_format_cannot_be_told_is_said_in_words_for_a_person(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    r = submit(client, csrf, "notes.txt", b"just some words\nand more\n")
    assert r.status_code == 415
    assert "This file cannot be read:" in r.text and "cannot tell the format" in r.text
    assert "Unsupported media type" not in r.text


def test_format_descriptions_read_in_russian(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "kz-analyst")
    client.post("/language", data={"language": "ru", "csrf_token": csrf})
    page = client.get("/intake").text
    titles = dict(re.findall(r'<option value="([\w-]+)" title="([^"]*)"', page))
    assert titles["stix"].startswith("Пакет или объект STIX 2.1")
    assert titles["csv"].startswith("CSV-фиды со встроенным профилем")
    assert titles["cert-eu"].startswith("CSV-фид угроз CERT-EU")
    untranslated = [name for name, title in titles.items() if title.isascii()]
    assert not untranslated
