"""Imports every domain's tables so metadata (and Alembic) sees the whole schema."""

from concord.access.model import ApiToken, Share, User, WebSession
from concord.audit.model import AuditHead, AuditRecord
from concord.cases.model import (
    Case,
    CaseEvent,
    CaseIndicator,
    CaseParticipant,
    CaseTechnique,
    TimelineEntry,
)
from concord.db import Base
from concord.events.correlation_model import (
    AlertMark,
    Campaign,
    CampaignEvent,
    CorrelationAlert,
)
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
from concord.reports.model import ReportRequest, StoredReport
from concord.site import SiteFlag

__all__ = [
    "AlertMark",
    "ApiToken",
    "Asset",
    "AssetRevision",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Campaign",
    "CampaignEvent",
    "Case",
    "CaseEvent",
    "CaseIndicator",
    "CaseParticipant",
    "CaseTechnique",
    "Contact",
    "CorrelationAlert",
    "Event",
    "EventObservable",
    "Indicator",
    "JobRun",
    "Organization",
    "ReportRequest",
    "Share",
    "Sighting",
    "SiteFlag",
    "StoredReport",
    "Submission",
    "SubmissionFile",
    "TimelineEntry",
    "User",
    "WebSession",
]
