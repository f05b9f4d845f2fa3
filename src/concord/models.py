"""Imports every domain's tables so metadata (and Alembic) sees the whole schema."""

from concord.access.model import ApiToken, Share, User, WebSession
from concord.audit.model import AuditHead, AuditRecord
from concord.db import Base
from concord.jobs.model import JobRun
from concord.orgs.model import Asset, AssetRevision, Contact, Organization
from concord.site import SiteFlag

__all__ = [
    "ApiToken",
    "Asset",
    "AssetRevision",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Contact",
    "JobRun",
    "Organization",
    "Share",
    "SiteFlag",
    "User",
    "WebSession",
]
