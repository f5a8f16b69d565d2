"""A daily-quota 429 of six hours, waited out durably: on the time-skipping server, in
seconds of wall time.

The sandbox answers as Spotify does when an app's daily quota is spent: 429 with reason
QUOTA_EXCEEDED and a Retry-After that runs to the next UTC midnight. Its clock reads
18:00 when the quota runs out, so that wait is six hours. The server skips them; the
sandbox, the rate gate and the server agree on the time because the first two read the
server's (``ServerClock``), so the quota has reset exactly when the gate opens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from enforcer.models import BatchStatus, EnforcementRequest, ItemStatus
from tests.support.contract import ContractRecorder
from tests.workflows._batches import (
    assert_library_agrees_with_ledger,
    enforcement_id,
    write_lower_bound,
)
from tests.workflows._plans import store_plan
from tests.workflows._server_time import ServerClock, ShiftedClock, next_day_at
from tests.workflows._world import USER, World, log_in, workers, world
from workflows.enforcement import EnforcementWorkflow

SIX_HOURS = 6 * 3600


@dataclass(frozen=True)
class Refusal:
    retry_after: str | None
    reason: str | None


class RefusalLog(httpx.AsyncBaseTransport):
    """Passes every exchange on and keeps each 429 the sandbox answered, as it came."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.refusals: list[Refusal] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code == 429:
            await response.aread()
            self.refusals.append(
                Refusal(
                    retry_after=response.headers.get("Retry-After"),
                    reason=response.json().get("error", {}).get("reason"),
                )
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def server_clock(temporal_time_skipping_env: WorkflowEnvironment) -> ServerClock:
    return await ServerClock.of(temporal_time_skipping_env)


@pytest.fixture
def sandbox_clock(server_clock: ServerClock) -> ShiftedClock:
    return ShiftedClock(server_clock)


@pytest.fixture
async def quota_world(
    tmp_path: Path, contract_recorder: ContractRecorder, sandbox_clock: ShiftedClock
) -> AsyncIterator[World]:
    """About ten chunks to remove, a sandbox on the server's time, refusals logged."""
    async with world(
        tmp_path,
        contract_recorder,
        liked_songs=200,
        playlists=4,
        blocked_artists=40,
        sandbox_clock=sandbox_clock,
    ) as made:
        yield replace(made, transport=RefusalLog(made.transport))


async def test_a_daily_quota_429_of_six_hours_is_waited_out_durably_and_the_batch_completes(
    temporal_time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    quota_world: World,
    server_clock: ServerClock,
    sandbox_clock: ShiftedClock,
) -> None:
    client: Client = temporal_time_skipping_env.client
    sandbox = quota_world.sandbox
    refusals = quota_world.transport
    assert isinstance(refusals, RefusalLog)
    plan = await store_plan(quota_world)

    async with workers(client, task_queue, quota_world, clock=server_clock.now):
        # Started paused, so that the sandbox's 18:00 comes when the chunks start,
        # not while the batch is being laid out.
        handle = await client.start_workflow(
            EnforcementWorkflow.run,
            EnforcementRequest(account_id=USER, plan_id=plan.id, max_in_flight=1),
            id=enforcement_id(plan.id),
            task_queue=task_queue,
            start_signal="pause",
        )
        await _until_laid_out_and_paused(client, handle.id)

        sandbox_clock.place(next_day_at(sandbox_clock.now(), hour=18))
        # The person logged in at 18:00: the earlier token has expired by the new time.
        tokens = sandbox.issue_tokens(USER, client_id=quota_world.settings.spotify_client_id)
        await log_in(quota_world.ledger, quota_world.settings, tokens)
        # Half the batch's writes a day: the quota runs out once, midway.
        sandbox.settings.daily_quota = write_lower_bound(plan.actions) // 2
        sandbox.reset_counters()
        wall_started = time.monotonic()
        await handle.signal(EnforcementWorkflow.resume)
        summary = await handle.result()
        wall_seconds = time.monotonic() - wall_started

    print(
        f"\nrefusals {refusals.refusals}; waits {summary.rate_limit_waits} of "
        f"{summary.rate_limit_wait_seconds:.0f} s in all; the batch took "
        f"{summary.duration_seconds:.0f} s of server time, {wall_seconds:.1f} s of wall time"
    )
    quota_refusals = [r for r in refusals.refusals if r.reason == "QUOTA_EXCEEDED"]
    assert quota_refusals, "the sandbox must have refused for its daily quota"
    # Sent just after 18:00:00 by the sandbox's clock: six hours to midnight, rounded up.
    assert [r.retry_after for r in quota_refusals] == [str(SIX_HOURS)]
    assert sandbox.counters.rate_limited == len(refusals.refusals) == 1
    assert sandbox.counters.violations == 0, "a request went out during the quota's wait"
    assert summary.status is BatchStatus.COMPLETED
    # The batch was held back six hours, once, however many attempts met the closed
    # gate (the time-skipping server retries a first attempt at once, whatever its
    # next_retry_delay: that early retry meets the closed gate and sends nothing).
    assert summary.rate_limit_waits >= 1
    assert SIX_HOURS - 5 <= summary.rate_limit_wait_seconds <= SIX_HOURS + 5
    assert summary.duration_seconds >= SIX_HOURS
    assert wall_seconds < 60, "the six hours must be skipped, not slept"

    items = await quota_world.ledger.action_items(summary.batch_id)
    assert {item.status for item in items} == {ItemStatus.COMPLETED}
    assert_library_agrees_with_ledger(sandbox.dump_user(USER), items)


async def _until_laid_out_and_paused(client: Client, workflow_id: str) -> None:
    handle = client.get_workflow_handle_for(EnforcementWorkflow.run, workflow_id)
    for _ in range(600):
        progress = await handle.query(EnforcementWorkflow.progress)
        if progress.status is BatchStatus.PAUSED and progress.chunks_total > 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the batch was not laid out and paused within 30 s")
