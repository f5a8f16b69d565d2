"""Every figure a summary prints is what Spotify received: requests by endpoint, 429s,
5xx answers, for the enforcement and for its rollback, under rate limits, a 429 storm
and server errors, and with requests the gate held back counted apart. The worker's log
tells each of those expected failures in one line, with no traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from enforcer.models import ApiTraffic, BatchStatus
from enforcer.sandbox import Counters, Faults
from tests.support.contract import ContractRecorder
from tests.workflows._saga import (
    library_of,
    plan,
    roll_back,
    small_library,
    start_enforcing,
    world_of,
)
from tests.workflows._world import World, workers


@pytest.fixture
async def made(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    library = small_library(liked_songs=300)
    async with world_of(tmp_path, contract_recorder, library, blocked_artists=8) as w:
        yield w


def _assert_agrees(traffic: ApiTraffic, counters: Counters) -> None:
    """The ledger's count of a batch's requests is the sandbox's, endpoint by endpoint."""
    assert traffic.sent_by_endpoint() == counters.calls
    assert traffic.sent == counters.total_calls
    assert traffic.rate_limited == counters.rate_limited
    statuses = traffic.by_status()
    assert sum(n for status, n in statuses.items() if status.startswith("5")) == (
        counters.server_errors
    )
    assert "unanswered" not in statuses


def _faulty(made: World) -> None:
    made.sandbox.reset_counters()
    made.sandbox.settings.rate_limit_budget = 10
    made.sandbox.settings.rate_limit_window = 1.0
    made.sandbox.set_faults(
        Faults(seed=11, server_error_rate=0.25, storm_requests=4, storm_retry_after=1)
    )


async def test_summaries_count_what_spotify_received_under_429s_and_5xx(
    temporal_client: Client, task_queue: str, made: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        plan_id = await plan(temporal_client, task_queue)
        _faulty(made)
        handle = await start_enforcing(temporal_client, task_queue, plan_id, max_in_flight=4)
        enforced = await handle.result()
        enforcing = made.sandbox.counters.model_copy(deep=True)

        _faulty(made)
        undone = await roll_back(temporal_client, task_queue, enforced.batch_id)
        undoing = made.sandbox.counters.model_copy(deep=True)

    assert enforced.status is BatchStatus.COMPLETED
    assert undone.status is BatchStatus.COMPLETED
    assert library_of(made.sandbox) == before
    for summary_calls, traffic, counters in (
        (enforced.api_calls, enforced.traffic, enforcing),
        (undone.api_calls, undone.traffic, undoing),
    ):
        assert counters.rate_limited > 0, "the test must meet 429s to mean anything"
        assert counters.server_errors > 0, "the test must meet 5xx to mean anything"
        assert counters.violations == 0
        assert summary_calls == counters.total_calls
        _assert_agrees(traffic, counters)
    assert enforced.rate_limit_waits == enforcing.rate_limited
    assert undone.rate_limit_waits == undoing.rate_limited
    # The ledger holds the same figures as the summaries.
    assert await made.ledger.traffic(enforced.batch_id) == enforced.traffic
    assert await made.ledger.traffic(undone.batch_id) == undone.traffic

    # The log: every expected failure in one line of its own, and no traceback at all
    # (before, each 429 and 5xx was a warning with the activity's whole traceback).
    told = [r.getMessage() for r in caplog.records if r.name == "activities._spotify_calls"]
    assert any("RateLimited" in line and "will retry in" in line for line in told)
    assert any("TransientError" in line for line in told)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
