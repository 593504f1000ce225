"""The change feed's Prometheus metrics, on the app's registry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from receiver.records import SubscriberHealth

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
OUTCOMES = ("delivered", "retried", "dead", "gone")


class FeedMetrics:
    """Per subscriber (a configured name): backlog, oldest pending age, deliveries by
    outcome, and latency from the change's commit to the subscriber's 2xx."""

    def __init__(self, registry: CollectorRegistry, subscribers: Sequence[str]) -> None:
        self.backlog = Gauge(
            "receiver_subscriber_backlog",
            "Changes queued for the subscriber and not yet acknowledged (pending or in flight).",
            ["subscriber"],
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "receiver_subscriber_oldest_pending_seconds",
            "Age of the oldest change queued for the subscriber (0 when none).",
            ["subscriber"],
            registry=registry,
        )
        self.dead = Gauge(
            "receiver_subscriber_dead_letters",
            "Changes given up after retry_horizon_seconds (receiver subscribers redeliver).",
            ["subscriber"],
            registry=registry,
        )
        self.disabled = Gauge(
            "receiver_subscriber_disabled",
            "1 when the subscriber answered 410 Gone and is not delivered to.",
            ["subscriber"],
            registry=registry,
        )
        self.deliveries = Counter(
            "receiver_subscriber_deliveries",
            "Delivery attempts by outcome: delivered (2xx), retried, dead, gone (410).",
            ["subscriber", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "receiver_subscriber_delivery_seconds",
            "From a change's commit to the subscriber's 2xx.",
            ["subscriber"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        # Each subscriber's children once: ``labels()`` is a lock and a lookup per call,
        # and every delivery counts and observes.
        self._counts = {
            (name, outcome): self.deliveries.labels(name, outcome)
            for name in subscribers
            for outcome in OUTCOMES
        }
        self._latencies = {name: self.latency.labels(name) for name in subscribers}

    def count(self, name: str, outcome: str) -> None:
        """One attempt of subscriber ``name`` ended with ``outcome``."""
        self._counts[name, outcome].inc()

    def observe_latency(self, name: str, seconds: float) -> None:
        """A change reached subscriber ``name`` this long after its commit."""
        self._latencies[name].observe(max(0.0, seconds))

    def observe_health(self, health: Sequence[SubscriberHealth], now: datetime) -> None:
        for subscriber in health:
            name = subscriber.name
            self.backlog.labels(name).set(subscriber.backlog)
            oldest = subscriber.oldest_pending
            self.oldest_pending.labels(name).set(
                0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            )
            self.dead.labels(name).set(subscriber.dead)
            self.disabled.labels(name).set(1 if subscriber.disabled_at else 0)
