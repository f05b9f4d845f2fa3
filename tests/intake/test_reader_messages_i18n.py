"""The reasons readers give for refused records read in Russian on a receipt: real samples,
corrupted in small ways, go through the readers, and every reason they yield has a catalogue
entry. A reason nested in another ("the line holds {reason}") is translated too; the user's
values (addresses, column names) are never translated."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable

import pytest

from concord.i18n import gettext
from concord.intake.readers import Reader
from concord.intake.readers.csvprofiles import READER as CSV_READER
from concord.intake.readers.email import READER as EMAIL_READER
from concord.intake.readers.intelmq import READER as INTELMQ_READER
from concord.intake.readers.misp import READER as MISP_READER
from concord.intake.readers.spamhaus import READER as SPAMHAUS_READER
from concord.intake.readers.stix import READER as STIX_READER
from concord.intake.records import ReadError
from tests.conftest import FIXTURES, shared_file

CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def reasons(reader: Reader, data: bytes, source: str) -> list[str]:
    return [i.reason for i in reader.read(io.BytesIO(data), source) if isinstance(i, ReadError)]


def assert_russian(found: list[str], expected: int) -> None:
    assert len(found) == expected, found
    for reason in found:
        russian = gettext("ru", reason)
        assert russian != reason and CYRILLIC.search(russian), reason
        assert gettext("en", reason) == reason


# --- each reader, fed a sample with small faults ----------------------------------------------


def shadowserver_scan() -> list[str]:
    name = "2024-03-01-scan_rdp-example-asn.csv"
    header, first, second, *rest = (FIXTURES / "feeds" / name).read_bytes().splitlines(True)
    broken = [
        header,
        first.replace(b"192.0.2.10", b"192.0.2.300"),  # a bad address
        second.replace(b"TS.example", b"TS.\xffexample"),  # a byte that is not UTF-8
        b'"2024-03-01 04:10:13","192.0.2.12","3389"\n',  # a short row
        first.replace(b"2024-03-01 04:10:11", b"yesterday"),  # an unreadable time
        *rest,
    ]
    return reasons(CSV_READER, b"".join(broken), name)


def intelmq_lines() -> list[str]:
    first, second, *_ = (FIXTURES / "intelmq" / "events.jsonl").read_bytes().splitlines()
    broken = [
        first[:40],  # a line cut in a string
        b"[1]",  # JSON, but no object
        second.replace(b'"__type": "Event"', b'"__type": "Report"'),
    ]
    return reasons(INTELMQ_READER, b"\n".join(broken) + b"\n", "events.jsonl")


def stix_bundles() -> list[str]:
    data = (FIXTURES / "stix" / "indicator-for-c2-ip-address.json").read_bytes()
    untyped = json.loads(data)
    del untyped["objects"][0]["type"]
    bad_pattern = json.loads(data)
    bad_pattern["objects"][0]["pattern"] = "ipv4-addr:value = '198.51.100.1'"  # no brackets
    return [
        *reasons(STIX_READER, json.dumps(untyped).encode(), "untyped.json"),
        *reasons(STIX_READER, json.dumps(bad_pattern).encode(), "pattern.json"),
        *reasons(STIX_READER, data.replace(b"indicator", b"indic\xffator", 1), "latin.json"),
        *reasons(STIX_READER, data[:200], "truncated.json"),
    ]


def misp_events() -> list[str]:
    data = (FIXTURES / "misp" / "misp_event.json").read_bytes()
    event = json.loads(data)
    del event["Attribute"][0]["type"]
    return [
        *reasons(MISP_READER, json.dumps(event).encode(), "event.json"),
        *reasons(MISP_READER, data[: len(data) // 2], "truncated.json"),
    ]


def emails() -> list[str]:
    data = (FIXTURES / "email" / "arf-01.eml").read_bytes()
    _header, _, body = data.partition(b"\n\n")
    no_boundary = re.sub(rb'boundary="[^"]*"', b"", data, count=1)
    return [
        *reasons(EMAIL_READER, body, "no-header.eml"),
        *reasons(EMAIL_READER, no_boundary, "no-boundary.eml"),
        *reasons(EMAIL_READER, b"", "empty.eml"),
    ]


def spamhaus_drop() -> list[str]:
    data = shared_file("feeds/spamhaus_drop.txt").read_bytes()
    broken = data.replace(b"1.4.0.0/17", b"1.4.0.0/33", 1)  # no such prefix length
    broken = broken.replace(b"2a06:e480::/29 ;", b"2a06:e480::/29 \xff;", 1)
    broken += b"1.2.3.4/16 ; host bits set\n5.0.0.0/1 ; far too wide\n"
    return reasons(SPAMHAUS_READER, broken, "drop.txt")


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (shadowserver_scan, 4),
        (intelmq_lines, 3),
        (stix_bundles, 4),
        (misp_events, 2),
        (emails, 5),
        (spamhaus_drop, 4),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_every_reason_a_reader_gives_reads_in_russian(
    read: Callable[[], list[str]], expected: int
) -> None:
    assert_russian(read(), expected)


def test_a_nested_reason_is_translated_inside_its_message() -> None:
    found = shadowserver_scan()
    line = next(r for r in found if r.startswith("the line holds"))
    assert gettext("ru", line).startswith("строка содержит байты не из UTF-8 (0xff, позиция ")
    truncated = stix_bundles()[-1]
    assert truncated.startswith("malformed JSON at line") and truncated.endswith(
        ": unexpected end of data"
    )
    assert gettext("ru", truncated).endswith(": неожиданный конец данных")
    # three deep: a line of a feed that is JSON with a syntax error in it
    cut = intelmq_lines()[0]
    assert cut.startswith("not valid JSON at column 41: unexpected ")
    russian = gettext("ru", cut)
    assert russian.startswith("недопустимый JSON в столбце 41: неожиданный ")
    assert not re.search(r"[A-Za-z]{4}", russian.replace("JSON", "")), russian


def test_every_reason_of_a_file_shows_in_russian_on_its_receipt() -> None:
    """What the receipt template does with each reason: `_(e.reason)`."""
    from concord.i18n import translator

    ru = translator("ru")
    for reason in shadowserver_scan():
        assert CYRILLIC.search(ru(reason)), reason


# --- the rule itself ----------------------------------------------------------------------------


def test_only_a_placeholder_named_reason_is_translated_in_turn() -> None:
    nested = "the header holds bytes that are not UTF-8 (0xe9 at character 7)"
    assert gettext("ru", nested) == "заголовок содержит байты не из UTF-8 (0xe9, позиция 7)"
    # `field` holds a value from the file, even when it reads like a catalogued message
    assert (
        gettext("ru", "profile field use text: use text")
        == "поле профиля use text: используйте текст"
    )
    # a user value is kept as given
    assert gettext("ru", "invalid IP address '10.0.0.256'") == "недопустимый IP-адрес '10.0.0.256'"
    assert (
        gettext("ru", "invalid ipv6 address '192.0.2.1'") == "недопустимый адрес ipv6 '192.0.2.1'"
    )
    # an inner reason nothing translates is left as it is
    assert gettext("ru", "the line holds something odd") == "строка содержит something odd"


def test_nesting_is_bounded() -> None:
    message = "cannot read it: " * 6 + "use text"
    russian = gettext("ru", message)
    assert russian.startswith("не удаётся прочитать: " * 4)
    assert russian.endswith("cannot read it: " * 2 + "use text")


def test_new_patterns_do_not_take_over_other_messages() -> None:
    assert (
        gettext("ru", "invalid e-mail address 'a@'") == "недопустимый адрес электронной почты 'a@'"
    )
    assert gettext("ru", "unknown RSIT class 'x'; use one of a, b") == (
        "неизвестный класс RSIT 'x'; используйте один из: a, b"
    )
    assert gettext("ru", "no such message 12") == "no such message 12"
