"""Organisations of the network, their contacts and their assets."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow


class OrgKind(enum.StrEnum):
    CENTRE = "centre"
    NATIONAL_BODY = "national-body"
    OWNER = "owner"
    PARTNER = "partner"


# The kinds that speak for a member state: a national body and its constituents. The centre
# and partners (feeds, vendors) may have a country of seat, but report for no state.
STATE_KINDS = (OrgKind.NATIONAL_BODY.value, OrgKind.OWNER.value)


class AssetKind(enum.StrEnum):
    IPV4_PREFIX = "ipv4-prefix"
    IPV6_PREFIX = "ipv6-prefix"
    ASN = "asn"
    DOMAIN = "domain"
    EMAIL_DOMAIN = "email-domain"
    SOFTWARE = "software"


class Sharable:
    """Columns every object under TLP carries; the access policy reads exactly these."""

    tlp: Mapped[str] = mapped_column(String(16), default="amber")
    # The organisation that created (owns) the object.
    origin_org_id: Mapped[int | None] = mapped_column(Integer, index=True)
    origin_user_id: Mapped[int | None] = mapped_column(Integer)
    # For TLP:AMBER: may recipients pass it on to their constituents?
    share_constituents: Mapped[bool] = mapped_column(Boolean, default=False)


class Organization(Sharable, Base):
    """An organisation is itself sharable: the directory of national bodies is public
    (TLP:CLEAR), while which banks and ministries are constituents is TLP:AMBER by default."""

    __tablename__ = "organizations"
    object_kind = "organization"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name_en: Mapped[str] = mapped_column(String(300))
    name_ru: Mapped[str] = mapped_column(String(300), default="")
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    sector: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8), default="en")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("kind in ('centre','national-body','owner','partner')", name="kind"),
    )

    def name(self, language: str) -> str:
        return self.name_ru if language == "ru" and self.name_ru else self.name_en

    @property
    def state(self) -> str | None:
        """The member state this organisation reports for (None: the centre, a partner)."""
        return self.country if self.kind in STATE_KINDS else None


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(60), default="security")
    language: Mapped[str] = mapped_column(String(8), default="en")
    pgp_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "email"),)


class Asset(Base):
    """One network or software asset of an owner.

    `value` is the canonical text form (network address, lower-case domain, purl or CPE);
    prefixes also keep their integer bounds so SQL can answer range questions.
    """

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(500))
    version: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    # Decimal text of the first address, zero-padded to 39 digits so text order = numeric
    # order for both IPv4 and IPv6 on every backend.
    range_start: Mapped[str | None] = mapped_column(String(39))
    range_end: Mapped[str | None] = mapped_column(String(39))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("org_id", "kind", "value", "version"),
        Index("ix_assets_kind_value", "kind", "value"),
        Index("ix_assets_org_kind", "org_id", "kind"),
        CheckConstraint(
            "kind in ('ipv4-prefix','ipv6-prefix','asn','domain','email-domain','software')",
            name="kind",
        ),
    )


class AssetRevision(Base):
    """A single counter bumped by every asset write, so lookup indexes in any process know
    when to rebuild without rescanning the table."""

    __tablename__ = "asset_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
