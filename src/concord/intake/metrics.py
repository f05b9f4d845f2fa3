"""Intake throughput and lag, exposed in the Prometheus text format at /metrics."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from concord.db import utcnow

RECORDS = Counter("concord_intake_records", "Records taken in, by outcome", ["outcome"])
BATCH_SECONDS = Histogram("concord_intake_batch_seconds", "Time to store one intake batch")
LAG = Gauge(
    "concord_intake_lag_seconds", "Age of the submission whose batch was stored last (0 when idle)"
)


def observe_batch(
    accepted: int, duplicates: int, rejected: int, seconds: float, submitted_at: datetime
) -> None:
    RECORDS.labels(outcome="accepted").inc(accepted)
    RECORDS.labels(outcome="duplicate").inc(duplicates)
    RECORDS.labels(outcome="rejected").inc(rejected)
    BATCH_SECONDS.observe(seconds)
    LAG.set(max(0.0, (utcnow() - submitted_at).total_seconds()))
