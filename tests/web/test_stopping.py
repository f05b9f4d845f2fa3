"""A request that the server's stop cancels before it is answered (its upload still being
received) is answered 503, saying to send it again: problem+json for the API, a page for
the UI, never a 500."""

from __future__ import annotations

import asyncio
import json

from concord.web.app import SERVER_STOPPING, create_app

BOUNDARY = "concord-test"
# A form whose file part is still arriving when the stop comes: no closing boundary yet.
FORM_START = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename="scan_rdp.csv"\r\n'
    "Content-Type: text/csv\r\n\r\n"
    '"timestamp","ip","port"\r\n'
).encode()


def _stopped_mid_upload(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST a multipart form to `path` whose body stalls after its first chunk, cancel the
    request's task as a server's stop does, and return what it was answered."""
    app = create_app()
    sent: list[dict] = []  # type: ignore[type-arg]
    first_chunk_read = asyncio.Event()

    async def receive() -> dict:  # type: ignore[type-arg]
        if not first_chunk_read.is_set():
            first_chunk_read.set()
            return {"type": "http.request", "body": FORM_START, "more_body": True}
        await asyncio.Event().wait()  # the rest never comes before the stop
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        request = asyncio.create_task(app(scope, receive, send))
        await first_chunk_read.wait()
        await asyncio.sleep(0.05)  # the form parser waits for the rest
        request.cancel()
        await request  # answered, not cancelled

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers_out = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers_out, body


def test_an_api_upload_cut_by_the_stop_is_answered_503_problem(auth) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = _stopped_mid_upload("/api/v1/intake", auth["kz-analyst"])
    assert status == 503
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["detail"] == SERVER_STOPPING
    assert problem["title"] == "Service unavailable" and problem["instance"] == "/api/v1/intake"


def test_a_page_upload_cut_by_the_stop_shows_a_page_saying_to_send_it_again(network) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = _stopped_mid_upload("/intake", {})
    assert status == 503
    assert headers["content-type"].startswith("text/html")
    assert "send it again once the server is back" in body.decode()


def test_the_words_are_in_the_catalogue() -> None:
    from concord.i18n import gettext

    assert gettext("ru", SERVER_STOPPING).startswith("сервер останавливается")
