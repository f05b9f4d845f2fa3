"""SMTP listener for abuse reports mailed to the centre (aiosmtpd).

Only the configured intake addresses are accepted. The reporting organisation is the one
whose contact sent the message, else the owner of the sender's e-mail domain, else the
configured default (the centre): a third party's report is the centre's to triage.

A mail whose attachments are feeds (a Shadowserver CSV, a STIX bundle, a MISP event, plain
or in a .zip or .gz) is taken in as those files, each a submission of its own; its text is
then a cover letter, not a report. Other mail is read as an abuse report (ARF, X-ARF or
plain text).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import ipaddress
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from concord.db import session_factory
from concord.errors import ConcordError, ConfigurationError, Conflict
from concord.intake import registry, service
from concord.intake.sources import Refused, open_sources
from concord.orgs.model import Contact, Organization
from concord.orgs.whois import current_index

log = logging.getLogger("concord.intake.smtp")
MAX_MESSAGE = 25 * 1024 * 1024


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
        addresses = os.environ.get("CONCORD_INTAKE_ADDRESSES", "abuse@localhost")
        return cls(
            host=host,
            port=port,
            addresses=frozenset(a.strip().lower() for a in addresses.split(",") if a.strip()),
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
            return "250 2.6.0 A delivery notice is not a report: not stored"
        try:
            receipts = await asyncio.to_thread(self._ingest, envelope.mail_from or "", content)
        except Conflict as exc:
            # the same report, still being taken in from an earlier delivery: a retry later
            # is answered "nothing changed"; a permanent refusal would bounce stored data
            return f"451 4.3.0 {str(exc)[:200]}"
        except ConcordError as exc:
            log.warning("refused a report from %s: %s", envelope.mail_from, exc)
            return f"554 5.6.0 {str(exc)[:200]}"
        except Exception:
            log.exception("could not store a report from %s", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        ids = ", ".join(str(r.id) for r in receipts)
        return (
            f"250 Receipt{'s' if len(receipts) > 1 else ''} {ids}: "
            f"{sum(r.accepted for r in receipts)} accepted, "
            f"{sum(r.duplicates for r in receipts)} duplicate, "
            f"{sum(r.rejected for r in receipts)} rejected"
        )

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

    def _ingest(self, sender: str, content: bytes) -> list[service.Receipt]:
        org = self._reporting_org(sender)
        if org is None:
            raise ConcordError("no organisation to attribute the report to")
        feeds = self._feeds(sender, org, content)
        if feeds:
            return feeds
        name = f"smtp-from-{sender or 'unknown'}.eml"
        receipt = service.ingest(
            session_factory(),
            None,
            service.Source(io.BytesIO(content), name),
            fmt="email",
            as_org=org,
            channel="smtp",
        )
        return [receipt]

    def _feeds(self, sender: str, org: str, content: bytes) -> list[service.Receipt]:
        """The receipts of the mail's attachments that are feeds; none for a mail that is
        itself the report (ARF, X-ARF) or whose attachments are not feeds."""
        message = email.message_from_bytes(content, policy=email.policy.default)
        if message.get_content_type() == "multipart/report" or message.get("X-ARF"):
            return []
        attached = [
            (part.get_filename() or "", part.get_payload(decode=True))
            for part in message.walk()
            if part.get_filename() and not part.is_multipart()
        ]
        receipts: list[service.Receipt] = []
        with tempfile.TemporaryDirectory(prefix="concord-mail-") as folder:
            for number, (name, data) in enumerate(attached):
                if not isinstance(data, bytes) or not data.strip():
                    continue
                shown, stored = _attachment_names(number, name)
                path = Path(folder) / stored
                path.write_bytes(data)
                for found in open_sources([str(path)]):
                    if isinstance(found, Refused):
                        log.warning("attachment from %s not read: %s", sender, found.reason)
                        continue
                    with found.stream:
                        receipt = _ingest_feed(org, found, _as_sent(found.filename, stored, shown))
                    if receipt is not None:
                        receipts.append(receipt)
        return receipts


def _attachment_names(number: int, name: str) -> tuple[str, str]:
    """An attachment's name as sent (cleaned, bounded), and the name it is stored under: one
    of ours, as a sender's may be too long or hold a NUL, with its suffix, by which
    archives are told."""
    given = Path(name.replace("\x00", "")).name.lstrip(".") or "attachment"
    suffix = Path(given).suffix[:10]
    shown = given[: 200 - len(suffix)].removesuffix(suffix) + suffix
    return shown, f"{number}{suffix}"


def _as_sent(filename: str, stored: str, shown: str) -> str:
    """A file found in a stored attachment, named after the attachment as sent: "0.zip!
    scan.csv" is "report.zip!scan.csv", and "0" unpacked from "0.gz" is "report.csv"."""
    if filename.startswith(stored):
        return shown + filename[len(stored) :]
    return shown.removesuffix(Path(shown).suffix)


def _ingest_feed(org: str, found: service.Source, named: str) -> service.Receipt | None:
    """Take in an attached file when it is a feed; None for a letter, a picture, a mail."""
    head = found.stream.read(service.SNIFF_BYTES)
    found.stream.seek(0)
    try:
        reader = registry.choose(head, named, None)
    except registry.UnsupportedFormat:
        return None
    if reader.name == "email":
        return None
    return service.ingest(
        session_factory(),
        None,
        service.Source(found.stream, named),
        as_org=org,
        channel="smtp",
        reader=reader,
    )


def start_listener(settings: SmtpSettings) -> Controller:
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
