"""Carrying out a plan: the batch in the ledger, and one Spotify call per chunk.

Every activity here may run twice. The batch, its items and its chunks are created
idempotently; a chunk re-reads its items from the ledger and sends only those not yet
done, and what it sends is idempotent on Spotify's side (removing what is already gone
changes nothing), so a retried chunk never does harm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._base import SpotifyActivities, refusal_error, tally_items
from activities._spotify_calls import RATE_LIMITED
from enforcer.ledger import ActionItemRecord, LedgerError
from enforcer.models import (
    SNAPSHOT_AFTER,
    TERMINAL_ITEM_STATUSES,
    BatchKind,
    BatchStatus,
    BatchStatusChange,
    ChunkFailure,
    ChunkLanes,
    ChunkLanesRequest,
    ChunkLayout,
    ChunkOutcome,
    ChunkRequest,
    EnforcementSummary,
    EntityType,
    FinishBatch,
    ItemStatus,
    StartBatch,
    WaitPeriod,
)
from enforcer.spotify import Generation, Operation, SpotifyClient
from enforcer.spotify.errors import BadRequest, EndpointGone, Forbidden, NotFound, SpotifyHTTPError
from enforcer.spotify.limits import LIBRARY_URIS_PER_CALL, PLAYLIST_ITEMS_PER_CALL

ITEMS_PER_READ: Final = 5_000
"""Plan actions copied into the batch per ledger round trip: bounded memory at any size."""
ERRORS_IN_SUMMARY: Final = 20

# Spotify refused these for good: the items end failed (a malformed request) or skipped
# (Spotify will not let this app or person do it), with Spotify's reason.
_SKIPPING_REFUSALS = (Forbidden, NotFound, EndpointGone)


class _AttemptStats(BaseModel):
    """What earlier attempts of a chunk cost, carried in heartbeat details."""

    model_config = ConfigDict(frozen=True)

    api_calls: int = 0
    rate_limit_waits: int = 0
    rate_limit_periods: tuple[WaitPeriod, ...] = ()


class EnforcementActivities(SpotifyActivities):
    """The activities of ``EnforcementWorkflow``, sharing one ledger and the settings."""

    def ledger_activities(self) -> Sequence[Callable[..., Any]]:
        """The activities that only touch the ledger: the main task queue."""
        return [
            self.start_batch,
            self.chunk_lanes,
            self.record_status,
            self.give_up_chunk,
            self.finish_batch,
        ]

    def spotify_activities(self) -> Sequence[Callable[..., Any]]:
        """The activities that write to Spotify: the rate-capped Spotify task queue."""
        return [self.apply_chunk]

    @activity.defn(name="start_enforcement_batch")
    async def start_batch(self, start: StartBatch) -> ChunkLayout:
        """Creates the batch, copies the plan's actions into it and cuts them into chunks."""
        request = start.request
        try:
            plan = await self._ledger.plan_record(request.plan_id)
        except LedgerError as error:
            raise refusal_error(str(error)) from error
        if plan.account_id != request.account_id:
            raise refusal_error(
                f"plan {request.plan_id!r} belongs to {plan.account_id!r}, "
                f"not to {request.account_id!r}"
            )
        await self._ledger.create_batch(
            start.batch_id,
            account_id=request.account_id,
            plan_id=request.plan_id,
            kind=BatchKind.ENFORCE,
            options={"max_in_flight": request.max_in_flight},
        )
        offset = 0
        while actions := await self._ledger.plan_actions(
            request.plan_id, offset=offset, limit=ITEMS_PER_READ
        ):
            await self._ledger.create_action_items(start.batch_id, actions)
            offset += len(actions)
        layout = await self._ledger.assign_chunks(
            start.batch_id,
            library_chunk_size=LIBRARY_URIS_PER_CALL,
            playlist_chunk_size=PLAYLIST_ITEMS_PER_CALL,
        )
        await self._ledger.set_batch_status(start.batch_id, BatchStatus.RUNNING)
        return layout

    @activity.defn(name="enforcement_chunk_lanes")
    async def chunk_lanes(self, request: ChunkLanesRequest) -> ChunkLanes:
        return await self._ledger.chunk_lanes(request.batch_id, request.first, request.count)

    @activity.defn(name="record_enforcement_status")
    async def record_status(self, change: BatchStatusChange) -> None:
        await self._ledger.set_batch_status(change.batch_id, change.status)

    @activity.defn(name="apply_enforcement_chunk")
    async def apply_chunk(self, request: ChunkRequest) -> ChunkOutcome:
        """One Spotify call (or none, when a retry finds the chunk done) for one chunk."""
        items = await self._ledger.chunk_items(request.batch_id, request.chunk)
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        earlier = _previous_attempts()
        calls = 0
        legacy: tuple[str, ...] = ()
        if unfinished:
            keys = [item.key for item in unfinished]
            await self._ledger.mark_items(request.batch_id, keys, ItemStatus.IN_PROGRESS)
            async with self._client(request.account_id) as client:
                try:
                    refusal, snapshot = await self._calls(lambda: _remove(client, unfinished))
                except ApplicationError as error:
                    _remember_attempt(earlier, client.calls.total, error, self._gate.clock())
                    raise
                finally:
                    calls = client.calls.total
                legacy = _legacy_operations(client)
            await self._record(request.batch_id, unfinished, refusal, snapshot)
        finished = await self._ledger.chunk_items(request.batch_id, request.chunk)
        return ChunkOutcome(
            chunk=request.chunk,
            tallies=tally_items(finished),
            api_calls=earlier.api_calls + calls,
            rate_limit_waits=earlier.rate_limit_waits,
            rate_limit_periods=earlier.rate_limit_periods,
            legacy_operations=legacy,
        )

    @activity.defn(name="give_up_enforcement_chunk")
    async def give_up_chunk(self, failure: ChunkFailure) -> ChunkOutcome:
        """Ends a chunk's unfinished items failed, with the error that ended the chunk."""
        request = failure.chunk
        items = await self._ledger.chunk_items(request.batch_id, request.chunk)
        unfinished = [item.key for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        if unfinished:
            await self._ledger.mark_items(
                request.batch_id, unfinished, ItemStatus.FAILED, error=failure.error
            )
        finished = await self._ledger.chunk_items(request.batch_id, request.chunk)
        return ChunkOutcome(chunk=request.chunk, tallies=tally_items(finished))

    @activity.defn(name="finish_enforcement_batch")
    async def finish_batch(self, finish: FinishBatch) -> EnforcementSummary:
        """Ends every item in a terminal state, and writes the summary to the ledger."""
        if finish.status is BatchStatus.CANCELLED:
            await self._ledger.skip_unfinished(finish.batch_id, "the batch was cancelled")
        layout = await self._ledger.chunk_layout(finish.batch_id)
        errors, error_count = await self._ledger.item_errors(
            finish.batch_id, limit=ERRORS_IN_SUMMARY
        )
        summary = EnforcementSummary(
            batch_id=finish.batch_id,
            plan_id=finish.plan_id,
            account_id=finish.account_id,
            status=finish.status,
            totals=layout.totals if layout is not None else {},
            tallies=await self._ledger.tallies(finish.batch_id),
            api_calls=finish.api_calls,
            rate_limit_waits=finish.rate_limit_waits,
            rate_limit_wait_seconds=finish.rate_limit_wait_seconds,
            duration_seconds=max((self._gate.clock() - finish.started_at).total_seconds(), 0.0),
            legacy_operations=finish.legacy_operations,
            errors=tuple(errors),
            errors_omitted=error_count - len(errors),
        )
        await self._ledger.set_batch_status(
            finish.batch_id, finish.status, summary=summary.model_dump(mode="json")
        )
        return summary

    async def _record(
        self,
        batch_id: str,
        items: Sequence[ActionItemRecord],
        refusal: SpotifyHTTPError | None,
        snapshot: str | None,
    ) -> None:
        keys = [item.key for item in items]
        if refusal is None:
            # A playlist's new snapshot_id: a rollback that finds it still there knows
            # the playlist is as enforcement left it without reading it.
            kept = {} if snapshot is None else {SNAPSHOT_AFTER: snapshot}
            await self._ledger.mark_items(
                batch_id, keys, ItemStatus.COMPLETED, after_state={"present": False, **kept}
            )
        elif isinstance(refusal, _SKIPPING_REFUSALS):
            await self._ledger.mark_items(batch_id, keys, ItemStatus.SKIPPED, error=str(refusal))
        else:
            await self._ledger.mark_items(batch_id, keys, ItemStatus.FAILED, error=str(refusal))


async def _remove(
    client: SpotifyClient, items: Sequence[ActionItemRecord]
) -> tuple[SpotifyHTTPError | None, str | None]:
    """Removes the chunk's URIs in one call; a refusal is returned, not raised, so that
    the items end failed or skipped with Spotify's reason while the batch goes on.
    Also returns the playlist's ``snapshot_id`` after the removal (None for the library)."""
    uris = [item.uri for item in items]
    playlist_id = items[0].container_id
    snapshot = None
    try:
        if items[0].entity_type is EntityType.PLAYLIST_ITEM and playlist_id is not None:
            snapshot = await client.remove_playlist_items(playlist_id, uris)
        else:
            await client.remove_from_library(uris)
    except (BadRequest, *_SKIPPING_REFUSALS) as refusal:
        return refusal, None
    return None, snapshot


def _previous_attempts() -> _AttemptStats:
    details = activity.info().heartbeat_details
    return _AttemptStats.model_validate(details[0]) if details else _AttemptStats()


def _remember_attempt(
    earlier: _AttemptStats, calls: int, error: ApplicationError, now: datetime
) -> None:
    """Heartbeats what this failed attempt cost, for the next attempt's outcome."""
    periods = earlier.rate_limit_periods
    held_back = error.type == RATE_LIMITED and error.next_retry_delay is not None
    if held_back and error.next_retry_delay is not None:
        periods = (*periods, WaitPeriod(start=now, end=now + error.next_retry_delay))
    activity.heartbeat(
        _AttemptStats(
            api_calls=earlier.api_calls + calls,
            rate_limit_waits=earlier.rate_limit_waits + int(held_back),
            rate_limit_periods=periods,
        )
    )


def _legacy_operations(client: SpotifyClient) -> tuple[str, ...]:
    """The removals Spotify made this account run on the legacy endpoints."""
    removals = (
        Operation.LIBRARY_REMOVE,
        Operation.ARTISTS_UNFOLLOW,
        Operation.PLAYLIST_ITEMS_REMOVE,
    )
    return tuple(op for op in removals if client.generations.get(op) is Generation.LEGACY)
