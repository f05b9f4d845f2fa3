"""SMTP listener for abuse reports mailed to the centre (aiosmtpd).

Only the configured intake addresses are accepted. The reporting organisation is the one
whose contact sent the message, else the owner of the sender's e-mail domain, else the
configured default (the centre): a third party's report is the centre's to triage.

A mail is taken in as one sent through the API is (`intake/mail.py`): a mail whose
attachments are feeds (a Shadowserver CSV, a STIX bundle, a MISP event, plain or in a .zip or
.gz) as those files, each a submission of its own listed on the mail's receipt, its text then
a cover letter; other mail as an abuse report (ARF, X-ARF or plain text). An attachment that
cannot be opened (a damaged or encrypted archive, a possible compression bomb) is refused,
and the reply says why.

Mail that answers a mail (a bounce, a delivery or read notice, an auto-reply) reports
nothing: it is answered before anything is stored.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import os
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from concord.db import session_factory
from concord.errors import ConcordError, ConfigurationError, Conflict
from concord.intake import mail, service
from concord.orgs.model import Contact, Organization
from concord.orgs.service import find_org
from concord.orgs.whois import current_index

log = logging.getLogger("concord.intake.smtp")
MAX_MESSAGE = 25 * 1024 * 1024
# RFC 5321: a reply line is at most 512 octets with its CRLF.
MAX_REPLY = 510

# Answers to a mail, which report nothing: taken (a refusal would bounce back and forth
# between two robots) and dropped.
NOTICE_NOT_STORED = f"250 2.6.0 {mail.NOTICE_NOT_A_REPORT}"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    addresses: frozenset[str]
    default_org: str | None
    # The mail relays allowed to deliver (None: any client that reaches the listener). The
    # sender decides whose report a mail is, and only a relay that checked it can vouch.
    relays: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None

    @classmethod
    def from_env(cls, host: str = "127.0.0.1", port: int = 2525) -> SmtpSettings:
        # empty as unset, as every setting: a listener for no address would refuse all mail
        given = os.environ.get("CONCORD_INTAKE_ADDRESSES", "").strip() or "abuse@localhost"
        addresses = frozenset(a.strip().lower() for a in given.split(",") if a.strip())
        wrong = sorted(a for a in addresses if a.count("@") != 1 or a.startswith("@"))
        if wrong or not addresses:
            raise ConfigurationError(
                f"CONCORD_INTAKE_ADDRESSES: {', '.join(wrong) or given!r} is no e-mail address; "
                "give the addresses the listener accepts, comma-separated"
            )
        return cls(
            host=host,
            port=port,
            addresses=addresses,
            default_org=os.environ.get("CONCORD_INTAKE_DEFAULT_ORG") or None,
            relays=_relays(os.environ.get("CONCORD_INTAKE_RELAYS", "")),
        )

    def admits(self, peer: Any) -> bool:
        if self.relays is None:
            return True
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%")[0])
        except (TypeError, IndexError, ValueError):
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.relays)


def _relays(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        return None
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in items)
    except ValueError as exc:
        raise ConfigurationError(
            f"CONCORD_INTAKE_RELAYS: {exc}; give addresses or networks, comma-separated"
        ) from None


class IntakeHandler:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.settings.admits(session.peer):
            return "550 5.7.1 Reports are taken from the configured relays only"
        if address.lower() not in self.settings.addresses:
            return "550 5.1.1 No such intake address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        if not (envelope.mail_from or "").strip("<> "):
            # the null sender (RFC 5321): a bounce or a delivery notice, never a report
            return NOTICE_NOT_STORED
        try:
            delivery = await asyncio.to_thread(self._deliver, envelope.mail_from or "", content)
        except Conflict as exc:
            # the same report, still being taken in from an earlier delivery: a retry later
            # is answered "nothing changed"; a permanent refusal would bounce stored data
            return _line(f"451 4.3.0 {str(exc)[:200]}")
        except ConcordError as exc:
            log.warning("refused a report from %s: %s", envelope.mail_from, exc)
            return _line(f"554 5.6.0 {str(exc)[:200]}")
        except Exception:
            log.exception("could not store a report from %s", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        reply = delivery.reply()
        log.info("mail from %s: %s", envelope.mail_from, reply)  # what the sender was told
        return reply

    def _reporting_org(self, sender: str) -> str | None:
        sender = sender.strip().lower()
        factory = session_factory()
        with factory() as session:
            slug = session.scalar(
                select(Organization.slug)
                .join(Contact, Contact.org_id == Organization.id)
                .where(Contact.email == sender)
                .limit(1)
            )
            if slug:
                return slug
            if "@" in sender:
                match = current_index(session).lookup_domain(sender.rsplit("@", 1)[1])
                if match is not None:
                    return session.scalar(
                        select(Organization.slug).where(Organization.id == match.org_ids[0])
                    )
            if self.settings.default_org:
                return self.settings.default_org
            return session.scalar(
                select(Organization.slug).where(Organization.kind == "centre").limit(1)
            )

    def _deliver(self, sender: str, content: bytes) -> Delivery:
        # Whether the mail answers a mail is told by its headers: only they are parsed here.
        # The mail is parsed whole once more in intake, which looks for feeds among its
        # attachments; the e-mail reader then parses its own bounded copy (parts too large to
        # decode dropped as it reads, the input's lines counted for its locations), so that it
        # stays a function of the bytes alone: a message parsed here could serve neither.
        answer = _not_a_report(mail.headers_of(content))
        if answer is not None:  # decided before anything is stored, or even looked up
            return Delivery(not_stored=answer)
        org = self._reporting_org(sender)
        if org is None:
            raise ConcordError("no organisation to attribute the report to")
        name = f"smtp-from-{sender or 'unknown'}.eml"
        # read, or taken in as its feeds, as a mail sent any other way is (`service.ingest`)
        receipt = service.ingest(
            session_factory(),
            None,
            service.Source(io.BytesIO(content), name),
            fmt="email",
            as_org=org,
            channel="smtp",
        )
        return Delivery(receipt)


@dataclass(frozen=True)
class Delivery:
    """What became of a mail: its receipt (with the receipts of its feeds taken in, as its
    parts, and the attachments refused among its errors), or, for a mail that is no report,
    the reply that says it was not stored."""

    receipt: service.Receipt | None = None
    not_stored: str = ""

    def reply(self) -> str:
        if self.receipt is None:
            return self.not_stored
        receipt = self.receipt
        ids = ", ".join(str(r.id) for r in [*receipt.parts, receipt])
        # an attachment refused is located by its name alone; the text's faults by its part
        refused = [e for e in receipt.errors if set(e) == {"source", "reason"}]
        which = "attachment refused" if len(refused) == 1 else "attachments refused"
        refusals = f"{which}: " + "; ".join(f"{e['source']}: {e['reason']}" for e in refused)
        taken = receipt.accepted or receipt.duplicates
        if refused and not taken:
            # Nothing taken in: a permanent refusal has the sender's relay tell the sender
            # why, where a 250 line is seen in the relay's log only.
            return _line(f"554 5.6.0 Receipt {ids}: nothing taken in; {refusals}")
        line = (
            f"250 Receipt{'s' if receipt.parts else ''} {ids}: {receipt.accepted} accepted, "
            f"{receipt.duplicates} duplicate, {receipt.rejected} rejected"
        )
        if receipt.note in service.RESUBMISSION_NOTES:  # the relay's log says so, as the API does
            line += f" ({receipt.note})"
        if refused:
            return _line(f"{line}; {refusals}")
        if receipt.errors and not taken:
            # the sender cannot read the receipt: the reply says why nothing was taken
            return _line(f"{line}; {receipt.errors[0]['reason']}")
        return _line(line)


def _not_a_report(message: EmailMessage) -> str | None:
    """The reply to a mail that answers another mail, which is not stored; None for any
    other."""
    why = mail.not_a_report(message)
    return None if why is None else f"250 2.6.0 {why}"


def _line(text: str) -> str:
    """One SMTP reply line: ASCII (the listener does not offer SMTPUTF8, and a name or a
    reason may not be), without a line break, and within the length RFC 5321 allows."""
    text = " ".join(text.split()).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= MAX_REPLY else text[: MAX_REPLY - 3] + "..."


def _check_default_org(settings: SmtpSettings) -> None:
    """A default organisation that does not exist would refuse, for good, every mail from a
    sender nobody is known by: said at start, not to each sender's relay."""
    if settings.default_org is None:
        return
    with session_factory()() as session:
        found = find_org(session, settings.default_org)
    if found is None:
        raise ConfigurationError(
            f"CONCORD_INTAKE_DEFAULT_ORG: no organisation {settings.default_org!r}; "
            "`concord org list` lists them"
        )


def start_listener(settings: SmtpSettings) -> Controller:
    _check_default_org(settings)
    controller = Controller(
        IntakeHandler(settings),
        hostname=settings.host,
        port=settings.port,
        data_size_limit=MAX_MESSAGE,
    )
    controller.start()
    log.info(
        "SMTP intake on %s:%d for %s",
        settings.host,
        settings.port,
        ", ".join(sorted(settings.addresses)),
    )
    return controller
