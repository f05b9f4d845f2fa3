"""The SMTP listener: attachments it cannot open, and mail that reports nothing."""

from __future__ import annotations

import gzip
import io
import json
import smtplib
import zipfile
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.audit.model import AuditRecord
from concord.errors import FaultLocation
from concord.events.model import Event, Submission, SubmissionFile
from concord.intake import service
from tests.conftest import FIXTURES, Network, sign_in
from tests.intake.test_channels import send_file, smtp_intake

CSV = FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv"
REPORT = FIXTURES / "email" / "plain-phishing.eml"  # read alone, a report with events
COVER = FIXTURES / "email" / "plain-bruteforce-html.eml"


@pytest.fixture
def smtp(env, network, monkeypatch) -> Iterator[smtplib.SMTP]:  # type: ignore[no-untyped-def]
    """A client of the intake's SMTP listener, taking mail for abuse@centre.example."""
    with smtp_intake(monkeypatch) as client:
        yield client


def _send(smtp: smtplib.SMTP, sender: str, mail: bytes | EmailMessage) -> tuple[int, bytes]:
    data = mail.as_bytes() if isinstance(mail, EmailMessage) else mail
    smtp.mail(sender)
    smtp.rcpt("abuse@centre.example")
    return smtp.data(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _sample(path=REPORT) -> EmailMessage:  # type: ignore[no-untyped-def]
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def _bomb() -> bytes:
    """Zeros, gzip-compressed: unpacked, far past the ratio any real feed has."""
    return gzip.compress(b"\0" * (16 << 20), compresslevel=9)


def _count_events_of(mail: EmailMessage) -> int:
    """How many events the e-mail reader makes of the mail, read on its own."""
    from concord.intake.readers.email import EmailReader
    from concord.intake.records import EventRecord

    items = EmailReader().read(io.BytesIO(mail.as_bytes()), "mail.eml")
    return sum(isinstance(item, EventRecord) for item in items)


def _count(session: Session, model: type) -> int:
    session.rollback()
    return int(session.scalar(select(func.count()).select_from(model)))


def test_a_refused_attachment_is_named_and_the_mail_read_as_its_report(  # type: ignore[no-untyped-def]
    smtp, session, network: Network, client
) -> None:
    alone = _count_events_of(_sample())
    mail = _sample()
    mail.add_attachment(_bomb(), maintype="application", subtype="gzip", filename="bomb.json.gz")
    code, said = _send(smtp, "reporter@example.org", mail)
    assert code == 250, said
    assert f"{alone} accepted, 0 duplicate, 1 rejected; ".encode() in said
    assert b"attachment refused: bomb.json.gz: unpacks to more than" in said
    assert b"refused as a possible compression bomb" in said
    # a plain-text report with an attachment that cannot be opened (a sample in an
    # encrypted archive, say) is still the report its text is
    assert _count(session, Event) == alone
    [sub] = session.scalars(select(Submission)).all()
    assert said.startswith(f"Receipt {sub.id}:".encode()), said
    assert (sub.channel, sub.format, sub.status) == ("smtp", "email", "done")
    assert (sub.accepted, sub.duplicates, sub.rejected) == (alone, 0, 1)
    assert sub.filename == "smtp-from-reporter@example.org.eml"
    [error] = json.loads(sub.errors)
    assert error["source"] == "bomb.json.gz" and set(error) == {"source", "reason"}
    assert error["reason"].startswith("unpacks to more than")
    assert error["reason"].endswith("refused as a possible compression bomb")
    # kept whole, with the mail itself, as a receipt the centre's analysts read
    assert _count(session, SubmissionFile) >= 1
    receipt = service.get_receipt(session, network["centre-analyst"], sub.id)  # type: ignore[arg-type]
    assert receipt.errors == [error] and receipt.status == "done"
    assert sign_in(client, "centre-analyst", follow_redirects=False).status_code == 303
    page = client.get(f"/intake/{sub.id}")
    assert page.status_code == 200 and 'data-count="rejected">1<' in page.text
    assert "<td>bomb.json.gz</td><td>unpacks to more than" in page.text

    again_code, again = _send(smtp, "reporter@example.org", mail)
    assert again_code == 250 and again.startswith(f"Receipt {sub.id}: 0 accepted".encode()), again
    assert b"(this file was submitted before; nothing changed" in again, again
    assert _count(session, Submission) == 1 and _count(session, Event) == alone


def test_a_mail_of_only_a_refused_attachment_is_refused(smtp, session) -> None:  # type: ignore[no-untyped-def]
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "reporter@example.org", "abuse@x", "report"
    mail.set_content("See the attached file.")
    mail.add_attachment(_bomb(), maintype="application", subtype="gzip", filename="bomb.json.gz")
    code, said = _send(smtp, "reporter@example.org", mail)
    # nothing taken in: a permanent refusal, so that the sender's relay tells the sender
    assert code == 554, said
    assert b"nothing taken in; attachment refused: bomb.json.gz: unpacks to more than" in said
    [sub] = session.scalars(select(Submission)).all()
    assert said.startswith(f"5.6.0 Receipt {sub.id}:".encode()), said
    assert sub.rejected >= 1 and sub.accepted == 0


def test_refused_attachments_beside_a_feed_are_named_on_the_receipt(  # type: ignore[no-untyped-def]
    smtp, session
) -> None:
    rows = len(CSV.read_text().splitlines()) - 1
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(CSV.name, CSV.read_bytes())
        zf.writestr("older.csv.gz", gzip.compress(CSV.read_bytes()))  # nested: refused
    mail = _sample(COVER)
    mail.make_mixed()
    mail.add_attachment(
        packed.getvalue(), maintype="application", subtype="zip", filename="reports.zip"
    )
    mail.add_attachment(_bomb(), maintype="application", subtype="gzip", filename="Отчёт.json.gz")
    code, said = _send(smtp, "autoreports@shadowserver.example", mail)
    assert code == 250, said
    assert said.isascii()  # a name the reply cannot spell in ASCII is still told
    assert f"{rows} accepted, 0 duplicate, 2 rejected; attachments refused: ".encode() in said
    assert b"reports.zip!older.csv.gz: nested archives are refused; " in said
    assert b"?????.json.gz: unpacks to more than" in said
    session.rollback()
    assert {feed.split(":")[0] for feed in session.scalars(select(Event.feed))} == {"shadowserver"}
    assert _count(session, Event) == rows
    subs = {s.format: s for s in session.scalars(select(Submission))}
    assert set(subs) == {"shadowserver", "email-attachments"}
    assert subs["shadowserver"].filename == f"reports.zip!{CSV.name}"
    errors = json.loads(subs["email-attachments"].errors)
    assert [e["source"] for e in errors] == ["reports.zip!older.csv.gz", "Отчёт.json.gz"]
    assert errors[0]["reason"] == "nested archives are refused"
    ids = sorted(s.id for s in subs.values())
    assert said.startswith(f"Receipts {ids[0]}, {ids[1]}: ".encode()), said


def _auto_reply(header: str, value: str) -> Callable[[], EmailMessage]:
    def build() -> EmailMessage:
        mail = _sample()
        mail[header] = value
        return mail

    return build


def _with_feed() -> EmailMessage:
    """An auto-reply that holds a feed: still no report, and its feed not taken in."""
    mail = _auto_reply("Auto-Submitted", "auto-replied")()
    mail.add_attachment(CSV.read_bytes(), maintype="text", subtype="csv", filename=CSV.name)
    return mail


def _notice(report_type: str) -> Callable[[], EmailMessage]:
    """A delivery status (a bounce) or a read notice, returning the report it answers."""

    def build() -> EmailMessage:
        notice = EmailMessage()
        notice["From"] = "postmaster@mail.example"
        notice["To"] = "abuse@centre.example"
        notice["Subject"] = "Returned mail"
        notice.set_content("Your message could not be delivered or was displayed.")
        notice.add_attachment(_sample())
        notice.replace_header("Content-Type", f'multipart/report; report-type="{report_type}"')
        return notice

    return build


@pytest.mark.parametrize(
    ("sender", "build", "reply"),
    [
        ("reporter@example.org", _auto_reply("Auto-Submitted", "auto-replied"), "automatic"),
        ("reporter@example.org", _auto_reply("X-Autoreply", "yes"), "automatic"),
        ("reporter@example.org", _auto_reply("Precedence", "auto_reply"), "automatic"),
        ("reporter@example.org", _with_feed, "automatic"),
        ("postmaster@mail.example", _notice("delivery-status"), "delivery notice"),
        ("reporter@example.org", _notice("disposition-notification"), "delivery notice"),
        ("<>", _sample, "delivery notice"),
    ],
    ids=["auto-replied", "x-autoreply", "precedence", "with-a-feed", "bounce", "read", "null"],
)
def test_mail_that_answers_a_mail_is_not_stored(  # type: ignore[no-untyped-def]
    smtp, session, sender: str, build: Callable[[], EmailMessage], reply: str
) -> None:
    code, said = _send(smtp, sender, build())
    assert code == 250 and said.startswith(b"2.6.0 ") and said.endswith(b"not stored"), said
    assert reply.encode() in said
    assert _count(session, Submission) == 0
    assert _count(session, Event) == 0
    assert session.scalar(select(AuditRecord.seq).where(AuditRecord.action == "submit")) is None


def test_a_machine_made_report_is_still_stored(smtp, session) -> None:  # type: ignore[no-untyped-def]
    # RFC 3834 asks a honeypot's complaint to say "auto-generated": that is a report
    code, said = _send(
        smtp, "reporter@example.org", _auto_reply("Auto-Submitted", "auto-generated")()
    )
    assert code == 250 and said.startswith(b"Receipt "), said
    assert _count(session, Submission) == 1 and _count(session, Event) > 0


def test_a_mail_uploaded_is_taken_in_as_its_feeds_on_every_channel(  # type: ignore[no-untyped-def]
    client, auth, network, session, tmp_path
) -> None:
    from typer.testing import CliRunner

    from concord.cli import app

    rows = len(CSV.read_text().splitlines()) - 1
    mail = _sample(COVER)
    mail.make_mixed()
    mail.add_attachment(
        gzip.compress(CSV.read_bytes()),
        maintype="application",
        subtype="gzip",
        filename=f"{CSV.name}.gz",
    )
    mail.add_attachment(_bomb(), maintype="application", subtype="gzip", filename="big.json.gz")
    r = send_file(client, auth["kz-analyst"], "forwarded.eml", mail.as_bytes())
    assert r.status_code == 200, r.text
    receipt = r.json()
    # its counts are the upload's: its attachments' with its own refusals
    assert receipt["format"] == "email-attachments" and receipt["accepted"] == rows
    assert [e["source"] for e in receipt["errors"]] == ["big.json.gz"]
    assert receipt["errors"][0]["reason"].endswith("refused as a possible compression bomb")
    [part] = receipt["parts"]
    assert (part["filename"], part["format"]) == (CSV.name, "shadowserver")
    assert (part["accepted"], part["rejected"]) == (rows, 0)
    assert _count(session, Event) == rows
    # the mail's receipt lists it later too, to its readers only
    again = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["kz-reader"]).json()
    assert [p["id"] for p in again["parts"]] == [part["id"]] and again["note"] == receipt["note"]
    hidden = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["uz-analyst"])
    assert hidden.status_code == 404
    assert sign_in(client, "kz-analyst", follow_redirects=False).status_code == 303
    page = client.get(f"/intake/{receipt['id']}").text
    assert 'id="receipt-parts"' in page and f'href="/intake/{part["id"]}"' in page

    # the same mail from a file on the command line: its feed is the one taken in before
    path = tmp_path / "forwarded.eml"
    path.write_bytes(mail.as_bytes())
    said = CliRunner().invoke(app, ["ingest", str(path), "--as", "uz-cert", "--json"])
    assert said.exit_code == 0, said.output
    totals = json.loads(said.stdout)
    assert (totals["accepted"], totals["rejected"]) == (rows, 1)
    assert totals["files"][0]["parts"][0]["accepted"] == rows
    shown = CliRunner().invoke(app, ["ingest", str(path), "--as", "uz-cert"])
    assert f"  attachment {CSV.name}: shadowserver, receipt " in shown.stdout, shown.output


def test_an_automatic_reply_uploaded_is_refused_not_stored(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    mail = _sample()
    mail["Auto-Submitted"] = "auto-replied"
    r = send_file(client, auth["kz-analyst"], "reply.eml", mail.as_bytes())
    assert r.status_code == 422, r.text
    assert "automatic reply is not a report" in r.json()["detail"]
    assert _count(session, Submission) == 0


def test_a_default_organisation_that_does_not_exist_stops_the_listener_at_start(  # type: ignore[no-untyped-def]
    env, network, monkeypatch
) -> None:
    from concord.errors import ConfigurationError
    from concord.intake.smtp import SmtpSettings, start_listener
    from tests.conftest import free_port

    monkeypatch.setenv("CONCORD_INTAKE_DEFAULT_ORG", "nosuch")
    with pytest.raises(ConfigurationError, match="CONCORD_INTAKE_DEFAULT_ORG: no organisation"):
        start_listener(SmtpSettings.from_env("127.0.0.1", free_port()))


@pytest.mark.parametrize(
    ("given", "accepted"),
    [("", {"abuse@localhost"}), (" ", {"abuse@localhost"}), ("A@x.org, b@y.org", None)],
)
def test_the_intake_addresses_are_addresses(monkeypatch, given: str, accepted) -> None:  # type: ignore[no-untyped-def]
    from concord.intake.smtp import SmtpSettings

    monkeypatch.setenv("CONCORD_INTAKE_ADDRESSES", given)
    settings = SmtpSettings.from_env()
    assert settings.addresses == (accepted or {"a@x.org", "b@y.org"})  # empty: as unset


def test_an_intake_address_that_is_none_stops_the_start(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.errors import ConfigurationError
    from concord.intake.smtp import SmtpSettings

    monkeypatch.setenv("CONCORD_INTAKE_ADDRESSES", "abuse@centre.example, abuse")
    with pytest.raises(ConfigurationError, match="CONCORD_INTAKE_ADDRESSES: 'abuse' is no e-mail"):
        SmtpSettings.from_env()


def test_a_mail_that_yields_nothing_is_told_why(smtp, session) -> None:  # type: ignore[no-untyped-def]
    mail = EmailMessage()
    mail["From"] = "reporter@example.org"
    mail["To"] = "abuse@centre.example"
    mail["Subject"] = "Complaint"
    mail.set_content("Something is wrong with your network, please look into it.\n")
    code, said = _send(smtp, "reporter@example.org", mail)
    assert code == 250, said
    assert said.endswith(
        b"0 accepted, 0 duplicate, 1 rejected; no IP address, domain, URL or "
        b"e-mail address found in the text"
    ), said


def test_a_file_in_two_mails_is_a_part_of_each(client, auth, network) -> None:  # type: ignore[no-untyped-def]
    def mail_with(*files: tuple[str, bytes]) -> bytes:
        mail = _sample(COVER)
        mail.make_mixed()
        for name, data in files:
            mail.add_attachment(data, maintype="text", subtype="csv", filename=name)
        return mail.as_bytes()

    other = FIXTURES / "feeds" / "2024-03-01-scan_ntp-example-asn.csv"
    alone = send_file(client, auth["kz-analyst"], other.name, other.read_bytes()).json()
    first = send_file(
        client, auth["kz-analyst"], "first.eml", mail_with((CSV.name, CSV.read_bytes()))
    ).json()
    second = send_file(
        client,
        auth["kz-analyst"],
        "second.eml",
        mail_with((CSV.name, CSV.read_bytes()), (other.name, other.read_bytes())),
    ).json()
    [part] = first["parts"]
    assert [p["id"] for p in second["parts"]] == [part["id"], alone["id"]]
    for sent in (first, second):  # later, each lists what it brought, as when it came
        again = client.get(f"/api/v1/intake/{sent['id']}", headers=auth["kz-reader"]).json()
        assert sorted(p["id"] for p in again["parts"]) == sorted(p["id"] for p in sent["parts"])
        assert again["note"] == sent["note"] != ""
    # the file sent alone is no mail's but its own
    assert (
        client.get(f"/api/v1/intake/{alone['id']}", headers=auth["kz-reader"]).json()["parts"] == []
    )


def _plain(body: str, subject: str = "SSH brute force") -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "reporter@example.org", "abuse@x", subject
    mail["Date"] = "Tue, 14 Jan 2025 10:30:00 +0000"
    mail.set_content(body)
    return mail


def test_a_plain_mail_naming_several_hosts_is_an_event_for_each_owner(  # type: ignore[no-untyped-def]
    smtp, session
) -> None:
    from concord.orgs import readers
    from concord.orgs import service as orgs
    from concord.orgs.model import Organization

    for owner, value in (("kz-bank", "198.51.100.0/24"), ("uz-telecom", "evil.example")):
        found = readers.normalise("", value, "", "", FaultLocation())
        orgs.import_assets(session, None, owner, [found])
    session.commit()
    code, said = _send(
        smtp,
        "reporter@example.org",
        _plain("We saw attacks from 192.0.2.1, 198.51.100.7 and evil.example.\n"),
    )
    # one event per host named, each the concern of its own owner
    assert code == 250 and said.endswith(b"3 accepted, 0 duplicate, 0 rejected"), said
    session.rollback()
    owners = dict(
        session.execute(
            select(Event.primary_value, Organization.slug).outerjoin(
                Organization, Organization.id == Event.owner_org_id
            )
        ).all()
    )
    assert owners == {"192.0.2.1": None, "198.51.100.7": "kz-bank", "evil.example": "uz-telecom"}
    # a host reported again in another mail is the same observation: it folds into its event
    code, said = _send(
        smtp, "reporter@example.org", _plain("Still attacked by 198.51.100.7 and 203.0.113.4.\n")
    )
    assert code == 250 and said.endswith(b"1 accepted, 1 duplicate, 0 rejected"), said
    assert _count(session, Event) == 4


def test_a_plain_mail_naming_too_many_hosts_is_read_up_to_the_limit(smtp, session) -> None:  # type: ignore[no-untyped-def]
    from concord.intake.readers.email import MAX_HOSTS

    body = "".join(f"198.51.{i // 250}.{i % 250 + 1} failed login\n" for i in range(MAX_HOSTS + 7))
    code, said = _send(smtp, "reporter@example.org", _plain(body))
    assert code == 250 and said.endswith(f"{MAX_HOSTS} accepted, 0 duplicate, 1 rejected".encode())
    [sub] = session.scalars(select(Submission)).all()
    [error] = json.loads(sub.errors)
    assert error["reason"] == (
        f"the mail names {MAX_HOSTS + 7} hosts: an event was made for each of the first "
        f"{MAX_HOSTS} and the other 7 were left out; send a longer list as a feed file"
    )
    assert _count(session, Event) == MAX_HOSTS
