"""Deployment-wide flags kept in the database (such as demo mode), so every process agrees."""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from concord.db import Base


class SiteFlag(Base):
    __tablename__ = "site_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


def get_flag(session: Session, key: str) -> str | None:
    return session.scalar(select(SiteFlag.value).where(SiteFlag.key == key))


def set_flag(session: Session, key: str, value: str) -> None:
    flag = session.get(SiteFlag, key)
    if flag is None:
        session.add(SiteFlag(key=key, value=value))
    else:
        flag.value = value


def is_demo(session: Session) -> bool:
    return get_flag(session, "demo") == "true"
