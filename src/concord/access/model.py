"""Users, API tokens, web sessions, shares, and the value types of the access policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow


class TLP(enum.StrEnum):
    """Traffic Light Protocol 2.0 labels (FIRST), from the widest audience to the narrowest."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        return list(TLP).index(self)

    @property
    def label(self) -> str:
        return f"TLP:{self.value.upper()}"

    @classmethod
    def parse(cls, text: str) -> TLP:
        cleaned = text.strip().lower().removeprefix("tlp:").replace(" ", "")
        if cleaned == "white":  # TLP 1.0 name still used by CSAF 2.0 and older feeds
            cleaned = "clear"
        try:
            return cls(cleaned)
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown TLP label {text!r}; use one of {allowed}") from None


class Role(enum.StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    READER = "reader"
    OWNER_CONTACT = "owner-contact"


class TokenScope(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is asking: resolved once per request from a session cookie or an API token."""

    user_id: int | None
    username: str | None
    org_id: int | None
    org_kind: str | None
    org_parent_id: int | None
    role: Role | None
    scopes: frozenset[TokenScope] = field(default_factory=frozenset)
    address: str | None = None
    language: str = ""  # the user's explicit choice; empty means "ask the browser"
    # Set when the request came with an API token: a token is a narrower credential than
    # the user's sign-in, and what it creates must not outlive it.
    via_token: bool = False
    token_expires_at: datetime | None = None
    token_id: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    @property
    def is_centre(self) -> bool:
        return self.org_kind == "centre"

    def can(self, scope: TokenScope) -> bool:
        return scope in self.scopes


ANONYMOUS = Principal(None, None, None, None, None, None)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(8))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("role in ('admin','analyst','reader','owner-contact')", name="role"),
    )


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Public lookup part of the token; the secret part is stored only as a SHA-256 digest.
    key_id: Mapped[str] = mapped_column(String(24), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The token that created this one, if a token did: revoking it revokes this one too.
    parent_id: Mapped[int | None] = mapped_column(Integer, index=True)


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    address: Mapped[str | None] = mapped_column(String(64))


class Share(Base):
    """A named recipient of a sharable object: an organisation, or (for TLP:RED) a user.

    One table for every object kind, so that the access policy has one place to look.
    """

    __tablename__ = "shares"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_kind: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("object_kind", "object_id", "org_id", "user_id"),
        Index("ix_shares_lookup_org", "object_kind", "org_id", "object_id"),
        Index("ix_shares_lookup_user", "object_kind", "user_id", "object_id"),
        CheckConstraint("(org_id is null) <> (user_id is null)", name="one_recipient"),
    )
