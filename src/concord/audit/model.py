"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow


class AuditRecord(Base):
    __tablename__ = "audit_log"

    # seq is contiguous from 1: a gap means a removed record.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    actor_org_id: Mapped[int | None] = mapped_column(Integer, index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    object_kind: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_object", "object_kind", "object_id"),
        # the log's filters, newest first: a rare action is found without reading the reads
        Index("ix_audit_log_action_seq", "action", "seq"),
        Index("ix_audit_log_actor_seq", "actor", "seq"),
    )


# Every action the log records, with the words the audit page shows it in (translated).
ACTIONS: dict[str, str] = {
    "create": "created",
    "update": "changed",
    "delete": "deleted",
    "import": "imported",
    "read": "read",
    "share": "shared",
    "share-owners": "shared with the owners",
    "submit": "submitted",
    "request": "requested",
    "login": "signed in",
    "login-failed": "sign-in failed",
    "login-locked": "locked after failed sign-ins",
    "password": "password set",
    "enable": "enabled",
    "disable": "disabled",
    "unlock": "unlocked",
    "revoke": "revoked",
    "status": "status changed",
    "assign": "assigned",
    "comment": "commented",
    "link": "linked",
    "unlink": "unlinked",
    "participant-add": "participant added",
    "participant-remove": "participant removed",
    "technique-add": "technique added",
    "technique-remove": "technique taken off",
}

# Every kind of object the log names, likewise.
OBJECT_KINDS: dict[str, str] = {
    "organization": "organisation",
    "contact": "contact",
    "asset": "asset",
    "user": "user",
    "token": "API token",
    "submission": "submission",
    "event": "event",
    "case": "case",
    "report": "report",
}


class AuditHead(Base):
    """The last sequence number and hash, kept apart so truncation of the log is detected."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
