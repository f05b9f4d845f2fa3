"""Imports every domain's tables so metadata (and Alembic) sees the whole schema."""

from concord.access.model import ApiToken, Share, User, WebSession
from concord.audit.model import AuditHead, AuditRecord
from concord.db import Base
from concord.events.model import (
    Event,
    EventObservable,
    Indicator,
    Sighting,
    Submission,
    SubmissionFile,
)
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
    "Event",
    "EventObservable",
    "Indicator",
    "JobRun",
    "Organization",
    "Share",
    "Sighting",
    "SiteFlag",
    "Submission",
    "SubmissionFile",
    "User",
    "WebSession",
]
