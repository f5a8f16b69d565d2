"""Carrying out a plan: the batch in the ledger, and one Spotify call per chunk.

Every activity here may run twice. The batch, its items and its chunks are created
idempotently; a chunk re-reads its items from the ledger and sends only those not yet
done, and what it sends is idempotent on Spotify's side (removing what is already gone
changes nothing), so a retried chunk never does harm.

The batch's items are made once the batch holds the account's turn (see
``activities.batch``): an item another enforcement removed after this plan saw it is
skipped then, naming that batch, so it is neither sent nor later put back by this
batch's rollback. Every request is counted in the ledger as it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from temporalio import activity

from activities._base import SpotifyActivities, kept_alive, refusal_error, tally_items
from enforcer.ledger import ActionItemRecord, LedgerError
from enforcer.models import (
    SNAPSHOT_AFTER,
    TERMINAL_ITEM_STATUSES,
    BatchKind,
    BatchStatus,
    ChunkFailure,
    ChunkLayout,
    ChunkOutcome,
    ChunkRequest,
    EnforcementSummary,
    EntityType,
    FinishBatch,
    ItemStatus,
    StartBatch,
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


class EnforcementActivities(SpotifyActivities):
    """The activities of ``EnforcementWorkflow``, sharing one ledger and the settings."""

    def ledger_activities(self) -> Sequence[Callable[..., Any]]:
        """The activities that only touch the ledger: the main task queue."""
        return [
            self.start_batch,
            self.prepare_batch,
            self.give_up_chunk,
            self.finish_batch,
        ]

    def spotify_activities(self) -> Sequence[Callable[..., Any]]:
        """The activities that write to Spotify: the rate-capped Spotify task queue."""
        return [self.apply_chunk]

    @activity.defn(name="start_enforcement_batch")
    async def start_batch(self, start: StartBatch) -> None:
        """Creates the batch's record (refusing a plan that is not the account's)."""
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

    @activity.defn(name="prepare_enforcement_batch")
    async def prepare_batch(self, start: StartBatch) -> ChunkLayout:
        """Once the batch holds the account's turn: copies the plan's actions into it,
        skips what another batch removed meanwhile, and cuts the rest into chunks."""
        async with kept_alive():
            return await self._prepare(start)

    async def _prepare(self, start: StartBatch) -> ChunkLayout:
        request = start.request
        offset = 0
        while actions := await self._ledger.plan_actions(
            request.plan_id, offset=offset, limit=ITEMS_PER_READ
        ):
            await self._ledger.create_action_items(start.batch_id, actions)
            offset += len(actions)
        removed_elsewhere: dict[str, list[str]] = {}
        for key, remover in (await self._ledger.removed_by_other_batches(start.batch_id)).items():
            removed_elsewhere.setdefault(remover, []).append(key)
        for remover, keys in removed_elsewhere.items():
            await self._ledger.mark_items(
                start.batch_id,
                keys,
                ItemStatus.SKIPPED,
                error=f"already removed by batch {remover} after this plan was made",
            )
        layout = await self._ledger.assign_chunks(
            start.batch_id,
            library_chunk_size=LIBRARY_URIS_PER_CALL,
            playlist_chunk_size=PLAYLIST_ITEMS_PER_CALL,
        )
        await self._ledger.set_batch_status(start.batch_id, BatchStatus.RUNNING)
        return layout

    @activity.defn(name="apply_enforcement_chunk")
    async def apply_chunk(self, request: ChunkRequest) -> ChunkOutcome:
        """One Spotify call (or none, when a retry finds the chunk done) for one chunk."""
        items = await self._ledger.chunk_items(request.batch_id, request.chunk)
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        legacy: tuple[str, ...] = ()
        if unfinished:
            keys = [item.key for item in unfinished]
            await self._ledger.mark_items(request.batch_id, keys, ItemStatus.IN_PROGRESS)
            async with kept_alive(), self._client(request.account_id, request.batch_id) as client:
                refusal, snapshot = await self._calls(lambda: _remove(client, unfinished))
                legacy = _legacy_operations(client)
            await self._record(request.batch_id, unfinished, refusal, snapshot)
        finished = await self._ledger.chunk_items(request.batch_id, request.chunk)
        return ChunkOutcome(
            chunk=request.chunk,
            tallies=tally_items(finished),
            traffic=await self._ledger.traffic(request.batch_id),
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
        return ChunkOutcome(
            chunk=request.chunk,
            tallies=tally_items(finished),
            traffic=await self._ledger.traffic(request.batch_id),
        )

    @activity.defn(name="finish_enforcement_batch")
    async def finish_batch(self, finish: FinishBatch) -> EnforcementSummary:
        """Ends every item in a terminal state, and writes the summary to the ledger."""
        async with kept_alive():
            return await self._finish(finish)

    async def _finish(self, finish: FinishBatch) -> EnforcementSummary:
        if finish.status is BatchStatus.CANCELLED:
            await self._ledger.skip_unfinished(finish.batch_id, "the batch was cancelled")
        layout = await self._ledger.chunk_layout(finish.batch_id)
        errors, error_count = await self._ledger.item_errors(
            finish.batch_id, limit=ERRORS_IN_SUMMARY
        )
        traffic = await self._ledger.traffic(finish.batch_id)
        summary = EnforcementSummary(
            batch_id=finish.batch_id,
            plan_id=finish.plan_id,
            account_id=finish.account_id,
            status=finish.status,
            totals=layout.totals if layout is not None else {},
            tallies=await self._ledger.tallies(finish.batch_id),
            api_calls=traffic.sent,
            rate_limit_waits=traffic.rate_limited,
            rate_limit_wait_seconds=traffic.waited_seconds,
            duration_seconds=max((self._gate.clock() - finish.started_at).total_seconds(), 0.0),
            traffic=traffic,
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


def _legacy_operations(client: SpotifyClient) -> tuple[str, ...]:
    """The removals Spotify made this account run on the legacy endpoints."""
    removals = (
        Operation.LIBRARY_REMOVE,
        Operation.ARTISTS_UNFOLLOW,
        Operation.PLAYLIST_ITEMS_REMOVE,
    )
    return tuple(op for op in removals if client.generations.get(op) is Generation.LEGACY)
