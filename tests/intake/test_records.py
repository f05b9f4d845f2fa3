"""Values every reader shares. Times at the edge of what a datetime holds: a zone can push
9999-12-31 or 0001-01-01 out of range once moved to UTC; every reader turns that into an error
with its location. URLs: one resource is one canonical text, whichever reader read it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concord.intake.readers.csvfeed import norm_url
from concord.intake.readers.intelmq import READER as INTELMQ
from concord.intake.readers.misp import READER as MISP
from concord.intake.readers.spamhaus import READER as SPAMHAUS
from concord.intake.readers.values import url_value
from concord.intake.records import EventRecord, ObservableKind, ReadError, utc
from tests.conftest import FIXTURES, shared_file

LATEST = "9999-12-31T23:59:59-14:00"
EARLIEST = "0001-01-01T00:00:00+14:00"


def test_utc_takes_naive_times_as_utc_and_refuses_what_utc_cannot_hold() -> None:
    assert utc(datetime(2026, 11, 30, 10)) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    east = datetime(2026, 11, 30, 15, tzinfo=timezone(timedelta(hours=5)))
    assert utc(east) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    for text in (LATEST, EARLIEST):
        with pytest.raises(ValueError, match="out of range in UTC"):
            utc(datetime.fromisoformat(text))


def _items(reader, data: bytes, name: str) -> list[EventRecord | ReadError]:  # type: ignore[no-untyped-def]
    return list(reader.read(io.BytesIO(data), name))


@pytest.mark.parametrize("moment", [LATEST, EARLIEST])
def test_intelmq_line_out_of_range_is_an_error_and_the_next_line_is_read(moment: str) -> None:
    good = (FIXTURES / "intelmq" / "events.jsonl").read_text().splitlines()[0]
    bad = json.loads(good)
    bad["time.source"] = moment
    items = _items(INTELMQ, f"{json.dumps(bad)}\n{good}\n".encode(), "events.jsonl")
    assert isinstance(items[0], ReadError) and items[0].location.line == 1
    assert items[0].location.pointer == "/time.source"
    assert "out of range in UTC" in items[0].reason
    assert isinstance(items[1], EventRecord)


def test_misp_attribute_out_of_range_is_an_error_with_its_pointer() -> None:
    event = json.loads(shared_file("misp/existing_event.json").read_text())
    before = _items(MISP, json.dumps(event).encode(), "existing_event.json")
    event.get("Event", event)["Attribute"][2]["first_seen"] = LATEST  # a domain, for IDS
    after = _items(MISP, json.dumps(event).encode(), "existing_event.json")
    errors = [i for i in after if isinstance(i, ReadError)]
    assert [e.location.pointer for e in errors] == ["/Attribute/2/first_seen"], errors
    records = [i for i in after if isinstance(i, EventRecord)]
    read_before = [i for i in before if isinstance(i, EventRecord)]
    assert len(records) == len(read_before) - 1  # the other attributes are read


def test_spamhaus_list_dated_out_of_range_keeps_its_entries() -> None:
    text = shared_file("feeds/spamhaus_drop.txt").read_text()
    dated = "; Last-Modified: Fri, 31 Dec 9999 23:59:59 -1400\n" + text
    items = _items(SPAMHAUS, dated.encode(), "drop.txt")
    assert items and all(isinstance(i, EventRecord) for i in items if not isinstance(i, ReadError))
    assert any(isinstance(i, EventRecord) for i in items)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        # an empty path of an http(s) URL is "/" (RFC 3986 6.2.3, RFC 9110 4.2.3)
        ("http://example.com", "http://example.com/"),
        ("HTTPS://Example.COM", "https://example.com/"),
        ("http://example.com:8080", "http://example.com:8080/"),
        ("http://User@Example.com", "http://User@example.com/"),
        ("http://example.com?q=A", "http://example.com/?q=A"),
        ("http://example.com#Top", "http://example.com/#Top"),
        ("http://[2001:DB8::1]", "http://[2001:db8::1]/"),
        # one site one way: the scheme's default port left out, the host as a domain is
        # stored (its ASCII form, no final dot), an address in its canonical form
        ("http://port-test.top:80/x.php", "http://port-test.top/x.php"),
        ("https://example.com:443", "https://example.com/"),
        ("http://example.com:/x", "http://example.com/x"),
        ("https://example.com:80/", "https://example.com:80/"),  # not https's own
        ("http://злой-банк.рф/login", "http://xn----8sbcwkjcue.xn--p1ai/login"),
        ("http://dot-test.top./x.php", "http://dot-test.top/x.php"),
        ("http://[2001:db8:0::1]:80/", "http://[2001:db8::1]/"),
        ("http://user@Host.example:80/x", "http://user@host.example/x"),
        # percent-escapes one way (RFC 3986 6.2.2): unreserved characters plain, hex upper
        ("http://evil.example/%7Euser/", "http://evil.example/~user/"),
        ("http://evil.example/%7euser/%41%2d%2e%5F", "http://evil.example/~user/A-._"),
        ("http://evil.example/a%2fb?q=%3d%7E#%7e", "http://evil.example/a%2Fb?q=%3D~#~"),
        ("http://evil.example/100%25/%zz", "http://evil.example/100%25/%zz"),
        ("http://evil.example/%D0%B7%d0%bb", "http://evil.example/%D0%B7%D0%BB"),
        # the rest as given
        ("http://example.com/", "http://example.com/"),
        ("http://example.com/A/b?C", "http://example.com/A/b?C"),
        ("ftp://example.com", "ftp://example.com"),
    ],
)
def test_a_url_is_one_text_in_every_reader(given: str, canonical: str) -> None:
    assert url_value(given) == canonical
    assert norm_url(given) == (ObservableKind.URL, canonical)


@pytest.mark.parametrize("given", ["http://:80/x", "http://user@:80/", "https://:443"])
def test_a_url_without_a_host_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="no host"):
        url_value(given)
    with pytest.raises(ValueError, match="no host"):
        norm_url(given)


@given(
    st.sampled_from(["http", "HTTPS", "ftp"]),
    st.sampled_from(["", "user@", "a:b@"]),
    st.sampled_from(["Example.COM", "пример.рф", "dot.example.", "192.0.2.1", "[2001:DB8::1]"]),
    st.sampled_from(["", ":", ":80", ":443", ":0080", ":8080", ":80:80"]),
    st.sampled_from(["", "/", "/A/b", "/x?q=1#f", "/%7e%2f%25%41?q=%3d#%7E"]),
)
def test_a_url_read_again_reads_the_same(scheme, user, host, port, path) -> None:  # type: ignore[no-untyped-def]
    once = url_value(f"{scheme}://{user}{host}{port}{path}")
    assert url_value(once) == once
    assert norm_url(once) == (ObservableKind.URL, once)


def test_a_url_without_a_scheme_is_kept_as_given() -> None:
    assert url_value("example.com/a") == "example.com/a"
    assert norm_url("example.com/a") == (ObservableKind.URL, "example.com/a")
