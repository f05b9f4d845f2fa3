"""SMTP listener for abuse reports mailed to the centre (aiosmtpd).

Only the configured intake addresses are accepted. The reporting organisation is the one
whose contact sent the message, else the owner of the sender's e-mail domain, else the
configured default (the centre): a third party's report is the centre's to triage.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from concord.db import session_factory
from concord.errors import ConcordError
from concord.intake import service
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

    @classmethod
    def from_env(cls, host: str = "127.0.0.1", port: int = 2525) -> SmtpSettings:
        addresses = os.environ.get("CONCORD_INTAKE_ADDRESSES", "abuse@localhost")
        return cls(
            host=host,
            port=port,
            addresses=frozenset(a.strip().lower() for a in addresses.split(",") if a.strip()),
            default_org=os.environ.get("CONCORD_INTAKE_DEFAULT_ORG") or None,
        )


class IntakeHandler:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() not in self.settings.addresses:
            return "550 5.1.1 No such intake address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        try:
            receipt = await asyncio.to_thread(self._ingest, envelope.mail_from or "", content)
        except ConcordError as exc:
            log.warning("refused a report from %s: %s", envelope.mail_from, exc)
            return f"554 5.6.0 {str(exc)[:200]}"
        except Exception:
            log.exception("could not store a report from %s", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        return (
            f"250 Receipt {receipt.id}: {receipt.accepted} accepted, "
            f"{receipt.duplicates} duplicate, {receipt.rejected} rejected"
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

    def _ingest(self, sender: str, content: bytes) -> service.Receipt:
        org = self._reporting_org(sender)
        if org is None:
            raise ConcordError("no organisation to attribute the report to")
        name = f"smtp-from-{sender or 'unknown'}.eml"
        return service.ingest(
            session_factory(),
            None,
            service.Source(io.BytesIO(content), name),
            fmt="email",
            as_org=org,
            channel="smtp",
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
