"""Whether a mail is a report is told from its header block alone, as from the whole mail:
the SMTP listener parses only the headers before it decides."""

from __future__ import annotations

import io
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from concord.intake import mail
from tests.conftest import FIXTURES

SAMPLES = sorted((FIXTURES / "email").glob("*.eml"))


def whole(data: bytes) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(data))


def decided(message: EmailMessage) -> tuple[str | None, bool]:
    return mail.not_a_report(message), mail.is_a_report(message)


def test_the_samples_are_told_alike_from_their_headers() -> None:
    for path in SAMPLES:
        data = path.read_bytes()
        assert decided(mail.headers_of(data)) == decided(whole(data)), path.name
        assert dict(mail.headers_of(data).items()) == dict(whole(data).items()), path.name


def test_only_the_header_block_is_parsed() -> None:
    body = b"Scans from 192.0.2.1\n" * 100_000
    head = mail.headers_of(b"From: a@r.example\r\nAuto-Submitted: auto-replied\r\n\r\n" + body)
    assert head.get_payload() == ""
    assert mail.not_a_report(head) == mail.AUTO_REPLY_NOT_A_REPORT


def test_an_uploaded_mail_is_told_from_its_headers_when_they_end_early() -> None:
    """The intake service looks into a mail's first bytes only; a header block running past
    them is left to a parse of the whole mail."""
    for path in SAMPLES:
        stream = io.BytesIO(path.read_bytes())
        stream.seek(0)
        head = mail.headers_in(stream)
        assert head is not None and stream.tell() == 0, path.name
        assert decided(head) == decided(whole(stream.getvalue())), path.name
    endless = io.BytesIO(b"X-Note: a\r\n" * (mail.HEADER_PEEK // 8) + b"\r\nbody\r\n")
    assert mail.headers_in(endless) is None and endless.tell() == 0


HEADERS = [
    b"From: a@r.example",
    b"Subject: Out of office",
    b"Auto-Submitted: auto-replied",
    b"Auto-Submitted: auto-generated",
    b"Auto-Submitted:\n auto-replied",  # folded
    b"X-Autoreply: yes",
    b"X-Autorespond: on",
    b"Precedence: auto_reply",
    b"Precedence: bulk",
    b"X-ARF: Yes",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=b",
    b'Content-Type: multipart/report;\n report-type="delivery-status"; boundary=b',
    b"Content-Type: multipart/report; report-type=disposition-notification",
    b"Content-Type: text/plain",
    b"not a header line",
    b" continued",
    b"",
    b"From mbox line",
]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from(HEADERS), max_size=8),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.sampled_from([*HEADERS, b"body 192.0.2.1", b"--b"]), max_size=6),
)
def test_any_header_block_is_told_alike(
    heads: list[bytes], newline: bytes, rest: list[bytes]
) -> None:
    lines = [*heads, b"", *rest] if rest else heads
    data = newline.join(line.replace(b"\n", newline) for line in lines)
    assert decided(mail.headers_of(data)) == decided(whole(data))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(SAMPLES), st.integers(0, 2000), st.binary(max_size=40))
def test_a_damaged_sample_is_told_alike(path, at: int, junk: bytes) -> None:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    data = data[:at] + junk + data[at:]
    assert decided(mail.headers_of(data)) == decided(whole(data))
