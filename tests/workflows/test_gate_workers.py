"""Two workers, one ledger, one Spotify: a 429 one of them receives stops the other too,
through the ledger's gate row, which each reads at most once per
``LEDGER_GATE_FRESH_FOR`` (not before every request), and the sandbox counts no request
sent during a penalty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from activities import LEDGER_GATE_FRESH_FOR, GateClosed, RateGate
from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BatchStatus, EnforcementRequest
from tests.support.contract import ContractRecorder
from tests.workflows._batches import assert_library_agrees_with_ledger, enforcement_id, plan_of
from tests.workflows._world import USER, World, settings_for, workers, world
from workflows.enforcement import EnforcementWorkflow

APP = "blocklist-enforcer-tests"
CROSS_WORKER_GRACE = 0.5
"""Seconds after a 429's answer in which another worker's request counts as in flight."""


@pytest.fixture
async def two_ledgers(tmp_path: Path) -> AsyncIterator[tuple[Ledger, Ledger]]:
    """Two workers' ledgers: separate connections to one database."""
    url = ledger_url(settings_for(tmp_path))
    first = await Ledger.open(url)
    second = await Ledger.open(url)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def test_a_penalty_one_worker_meets_stops_the_other_within_the_freshness_bound(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    ours, theirs = RateGate(two_ledgers[0], APP), RateGate(two_ledgers[1], APP)
    await theirs.check()  # open, and now read: trusted for LEDGER_GATE_FRESH_FOR

    until = await ours.close(timedelta(seconds=30), "rate limited on DELETE /v1/me/library")
    await asyncio.sleep(LEDGER_GATE_FRESH_FOR.total_seconds())

    with pytest.raises(GateClosed) as closed:
        await theirs.check()
    assert closed.value.until == until
    # Known now in that worker's memory: the last-moment check before a request's first
    # byte (no I/O) holds it back too, and no more reading is needed until it ends.
    with pytest.raises(GateClosed):
        theirs.check_here()
    reads = theirs.ledger_reads
    await asyncio.sleep(LEDGER_GATE_FRESH_FOR.total_seconds())
    with pytest.raises(GateClosed):
        await theirs.check()
    assert theirs.ledger_reads == reads


async def test_requests_at_once_share_one_reading_of_the_ledger(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    gate = RateGate(two_ledgers[0], APP, fresh_for=timedelta(seconds=30))

    await asyncio.gather(*(gate.check() for _ in range(50)))
    await gate.check()

    assert gate.ledger_reads == 1


@pytest.fixture
async def smaller_world(
    tmp_path: Path, contract_recorder: ContractRecorder
) -> AsyncIterator[World]:
    """About 200 blocked liked songs and blocked items in 10 playlists: ~35 chunks."""
    async with world(
        tmp_path, contract_recorder, liked_songs=1_000, playlists=10, blocked_artists=40
    ) as made:
        yield made


async def test_two_workers_under_429s_never_send_a_request_during_a_penalty(
    temporal_client: Client, task_queue: str, smaller_world: World
) -> None:
    sandbox = smaller_world.sandbox
    other = World(
        sandbox=sandbox,
        settings=smaller_world.settings,
        ledger=await Ledger.open(ledger_url(smaller_world.settings)),
        transport=smaller_world.transport,
        blocked=smaller_world.blocked,
        library=smaller_world.library,
    )
    # A connection of its own, as another process has (one client may not run two
    # workers on one task queue).
    config = temporal_client.config()
    elsewhere = await Client.connect(
        temporal_client.service_client.config.target_host,
        namespace=temporal_client.namespace,
        data_converter=config["data_converter"],
    )
    try:
        first = workers(temporal_client, task_queue, smaller_world)
        second = workers(elsewhere, task_queue, other)
        async with first, second:
            plan = await plan_of(temporal_client, task_queue)
            # A tight rolling window: 6 requests a second, 8 chunks in flight over two
            # workers, each with its own gate in memory.
            sandbox.settings.rate_limit_budget = 6
            sandbox.settings.rate_limit_window = 1.0
            # What a gate promises across workers (activities._spotify_calls): another
            # worker stops once the 429's worker has written the gate row and the other
            # has read it, at most LEDGER_GATE_FRESH_FOR later. Both workers share this
            # process's one event loop and, here, two busy cores: the write can wait for
            # the loop and a thread for hundreds of milliseconds. A request sent in that
            # time is in flight; one sent after it is a violation. (One worker's own
            # requests are held back at once, from memory: test_true_figures keeps the
            # sandbox's 50 ms.)
            sandbox.settings.in_flight_grace_seconds = CROSS_WORKER_GRACE
            sandbox.reset_counters()
            summary = await temporal_client.execute_workflow(
                EnforcementWorkflow.run,
                EnforcementRequest(account_id=USER, plan_id=plan.plan_id, max_in_flight=8),
                id=enforcement_id(plan.plan_id),
                task_queue=task_queue,
            )
    finally:
        await other.ledger.close()

    assert sandbox.counters.rate_limited > 0, "the test must meet rate limits to mean anything"
    assert first.gate.ledger_reads > 0, "both workers must send requests"
    assert second.gate.ledger_reads > 0, "both workers must send requests"
    assert sandbox.counters.violations == 0, sandbox.counters
    assert summary.status is BatchStatus.COMPLETED
    assert summary.api_calls == sandbox.counters.total_calls
    assert summary.rate_limit_waits == sandbox.counters.rate_limited
    assert_library_agrees_with_ledger(
        sandbox.dump_user(USER), await smaller_world.ledger.action_items(summary.batch_id)
    )
