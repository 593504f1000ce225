"""Prometheus metrics, on a registry of the app's own (so apps never collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from receiver.core.reports import FinalOutcome, Outcome
from receiver.records import Pruned

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
REPORT_LATENCY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class _IngestChildren:
    """One provider's children of the per-request metrics (``Metrics.observe_ingest``)."""

    def __init__(self, metrics: Metrics, provider: str) -> None:
        self.applied = metrics.reports.labels(provider, "applied")
        self.duplicates = metrics.reports.labels(provider, "duplicates")
        self.superseded = metrics.reports.labels(provider, "superseded")
        self.seconds = metrics.ingest_seconds.labels(provider)


class Metrics:
    """The service's metrics; labels are configured provider names, never free text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Labelled children looked up once, not per request (labels() costs a lock and
        # a dict lookup on a tuple of every label value).
        self._ingest_children: dict[str, _IngestChildren] = {}
        self._outcome_children: dict[tuple[str, str, str], Counter] = {}
        self._latency_children: dict[tuple[str, str], Histogram] = {}
        self.reports = Counter(
            "receiver_reports",
            "Delivery reports received, by provider and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "receiver_signature_failures",
            "Webhook requests refused by signature verification, by reason.",
            ["provider", "reason"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "receiver_ingest_seconds",
            "Time from a webhook request's arrival to its answer.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_reports = Histogram(
            "receiver_commit_batch_reports",
            "Reports applied per group commit.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "receiver_commit_seconds",
            "Time one group commit took (apply and fsync).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.pruned_rows = Counter(
            "receiver_pruned_rows",
            "Rows deleted by retention ([retention]), by table.",
            ["table"],
            registry=self.registry,
        )
        for table in fields(Pruned):
            self.pruned_rows.labels(table.name)
        self.retention_pass = Gauge(
            "receiver_retention_last_pass_timestamp_seconds",
            "When the last complete retention pass finished (Unix time).",
            registry=self.registry,
        )

        from receiver.outbound.reconcile import ReconcileMetrics  # it imports the config

        self.reconcile = ReconcileMetrics(self.registry)
        self.outcomes = Counter(
            "receiver_message_outcomes",
            "Reports that gave a message a final status, by provider, destination country"
            " (ISO 3166-1 alpha-2, or unknown) and status.",
            ["provider", "country", "status"],
            registry=self.registry,
        )
        self.report_latency = Histogram(
            "receiver_report_latency_seconds",
            "From the hand-over to the provider (or the first sent report) to the delivered"
            " report's occurred_at, by provider and destination country.",
            ["provider", "country"],
            buckets=REPORT_LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.store_up = Gauge(
            "receiver_store_up",
            "1 if the store answered the readiness probe at this scrape, else 0.",
            registry=self.registry,
        )

        self.wal_bytes = Gauge(
            "receiver_sqlite_wal_bytes",
            "Size of the SQLite write-ahead log file (grows while checkpoints cannot finish).",
            registry=self.registry,
        )
        self.http_connections = Gauge(
            "receiver_http_connections",
            "Open HTTP connections of this process.",
            registry=self.registry,
        )
        self.http_connections_max = Gauge(
            "receiver_http_connections_max",
            "Open HTTP connections beyond which the idlest is closed (server.max_connections).",
            registry=self.registry,
        )
        self.http_refused = Counter(
            "receiver_http_refused",
            "Connections closed or requests refused by the HTTP edge, by reason.",
            ["reason"],
            registry=self.registry,
        )

    def observe_pruned(self, pruned: Pruned) -> None:
        """Called after each complete retention pass."""
        for table, rows in asdict(pruned).items():
            self.pruned_rows.labels(table).inc(rows)
        self.retention_pass.set_to_current_time()

    def watch_wal(self, size: Callable[[], float]) -> None:
        """Read the WAL gauge from ``size`` at every scrape, so it is never stale."""
        self.wal_bytes.set_function(size)

    def observe_ingest(self, provider: str, outcome: Outcome, seconds: float) -> None:
        """Count one committed webhook request's reports and final outcomes, and time it
        from arrival to answer. The provider's labelled children are looked up once
        (``_ingest_children``), not per request."""
        children = self._ingest_children.get(provider)
        if children is None:
            children = self._ingest_children[provider] = _IngestChildren(self, provider)
        if outcome.applied:
            children.applied.inc(outcome.applied)
        if outcome.duplicates:
            children.duplicates.inc(outcome.duplicates)
        if outcome.superseded:
            children.superseded.inc(outcome.superseded)
        if outcome.finals:
            self.observe_finals(provider, outcome.finals)
        children.seconds.observe(seconds)

    def observe_finals(self, provider: str, finals: Iterable[FinalOutcome]) -> None:
        """Count committed final outcomes. Labels are bounded: configured providers,
        ISO 3166-1 regions (or ``unknown``) and the five final statuses."""
        for final in finals:
            country = final.country or "unknown"
            key = (provider, country, final.status.value)
            outcome = self._outcome_children.get(key)
            if outcome is None:
                outcome = self._outcome_children[key] = self.outcomes.labels(*key)
            outcome.inc()
            if final.latency_seconds is not None:
                latency = self._latency_children.get(key[:2])
                if latency is None:
                    latency = self.report_latency.labels(provider, country)
                    self._latency_children[key[:2]] = latency
                latency.observe(final.latency_seconds)

    def observe_commit(self, reports: int, seconds: float) -> None:
        """Called from the writer thread after each commit (prometheus is thread-safe)."""
        self.batch_reports.observe(reports)
        self.commit_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
