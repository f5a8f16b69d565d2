"""The project's own Prometheus metrics, served with the Temporal SDK's on the worker's
metrics endpoint (``ENFORCER_METRICS_ADDRESS``; ``worker.metrics_runtime``).

Each is recorded through the meter Temporal gives the running activity
(``activity.metric_meter()``, which adds ``namespace``, ``task_queue`` and
``activity_type``) or workflow (``workflow.metric_meter()``, replay-safe: a replayed
workflow task records nothing). Outside an activity (a unit test calling a transport
directly) nothing is recorded. With no endpoint configured the SDK's meter records
nothing either.

Invariants: each event is counted once, where it happened: a request when it leaves, an
answer when it comes, an item when the ledger write that ends it changes it (a chunk run
twice counts each item once). Labels are small fixed sets: endpoint templates
(``DELETE /v1/playlists/{playlist_id}/items``, never a URL with an ID), HTTP statuses,
entity kinds, batch statuses. Never an account, a batch ID or a token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from temporalio import activity
from temporalio.common import MetricMeter

from enforcer.models import EntityType


@dataclass(frozen=True)
class Metric:
    """One of our series: its name as created (Prometheus adds ``_total`` to a
    counter's), what it means, and its labels."""

    name: str
    description: str
    labels: tuple[str, ...] = ()


ITEMS_REMOVED: Final = Metric(
    "enforcer_items_removed",
    "Items an enforcement removed from Spotify (newly completed in the ledger), by kind.",
    ("kind",),
)
ITEMS_RESTORED: Final = Metric(
    "enforcer_items_restored",
    "Items a rollback put back on Spotify (newly completed in the ledger), by kind.",
    ("kind",),
)
SPOTIFY_REQUESTS: Final = Metric(
    "enforcer_spotify_requests",
    "Requests that left for the Spotify Web API, by endpoint template.",
    ("endpoint",),
)
SPOTIFY_ANSWERS: Final = Metric(
    "enforcer_spotify_answers",
    "Answers from the Spotify Web API, by endpoint template and HTTP status.",
    ("endpoint", "status"),
)
SPOTIFY_RATE_LIMITED: Final = Metric(
    "enforcer_spotify_rate_limited",
    "429 answers from the Spotify Web API, by endpoint template and reason "
    "(rate_limit, or daily_quota).",
    ("endpoint", "reason"),
)
RATE_GATE_CLOSURES: Final = Metric(
    "enforcer_rate_gate_closures",
    "Times a 429 closed this worker's rate gate while it was open.",
)
RATE_LIMIT_WAIT: Final = Metric(
    "enforcer_rate_limit_wait_seconds",
    "Seconds each 429 added to the time this worker's rate gate stays closed (the "
    "sum: how long its requests were held back by its own 429s).",
)
BATCHES_ENDED: Final = Metric(
    "enforcer_batches_ended",
    "Batches that ended, by kind (enforce, rollback) and final status.",
    ("batch_kind", "status"),
)

COUNTERS: Final = (
    ITEMS_REMOVED,
    ITEMS_RESTORED,
    SPOTIFY_REQUESTS,
    SPOTIFY_ANSWERS,
    SPOTIFY_RATE_LIMITED,
    RATE_GATE_CLOSURES,
    BATCHES_ENDED,
)
HISTOGRAM_BUCKETS: Final[Mapping[str, Sequence[float]]] = {
    # Spotify's Retry-After runs from a second to hours (a daily quota).
    RATE_LIMIT_WAIT.name: (1, 2, 5, 10, 30, 60, 300, 3600, 86400),
}


def _meter() -> MetricMeter | None:
    return activity.metric_meter() if activity.in_activity() else None


def _count(metric: Metric, amount: int = 1, **labels: str) -> None:
    meter = _meter()
    if meter is not None and amount > 0:
        meter.create_counter(metric.name, metric.description).add(amount, labels)


def request_left(endpoint: str) -> None:
    _count(SPOTIFY_REQUESTS, endpoint=endpoint)


def answered(endpoint: str, status: int) -> None:
    _count(SPOTIFY_ANSWERS, endpoint=endpoint, status=str(status))


def rate_limited(endpoint: str, *, daily_quota: bool) -> None:
    reason = "daily_quota" if daily_quota else "rate_limit"
    _count(SPOTIFY_RATE_LIMITED, endpoint=endpoint, reason=reason)


def gate_closed(*, was_open: bool, added_seconds: float) -> None:
    """A 429 closed the gate (``was_open``) or lengthened its closure by
    ``added_seconds`` (0 when an earlier 429's penalty already covered it)."""
    meter = _meter()
    if meter is None:
        return
    if was_open:
        _count(RATE_GATE_CLOSURES)
    wait = meter.create_histogram_float(RATE_LIMIT_WAIT.name, RATE_LIMIT_WAIT.description, "s")
    wait.record(max(added_seconds, 0.0))


def items_ended(metric: Metric, by_kind: Mapping[EntityType, int]) -> None:
    for kind, count in by_kind.items():
        _count(metric, count, kind=kind.value)
