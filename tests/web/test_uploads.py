"""Upload limits on a real server: an oversized body is refused as it arrives."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def small_limit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.config import reset_settings

    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", "1000")
    reset_settings()


def test_a_form_past_the_limit_is_refused_before_it_is_all_sent(
    small_limit, auth, server: str
) -> None:  # type: ignore[no-untyped-def]
    """A chunked form of no declared length: the answer comes while the body is still
    unfinished, so the server neither waits for the rest nor spools it to disk."""
    address = urlsplit(server)
    token = auth["kz-analyst"]["Authorization"]
    head = (
        "POST /api/v1/intake HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nAuthorization: {token}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
    chunk = part + b"a" * (64 << 10)
    with socket.create_connection((address.hostname, address.port), timeout=20) as conn:
        conn.sendall(head)
        for _ in range(32):  # 2 MiB, past the limit and the room for the form; never ended
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            chunk = b"a" * (64 << 10)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = conn.recv(65536)
            if not data:
                break
            answer += data
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[-1] or b"{}")
    assert body.get("detail") == "the upload exceeds the limit of 1000 bytes", answer
