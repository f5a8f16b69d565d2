"""Carrying out a plan: the batch in the ledger, and one Spotify call per chunk.

Every activity here may run twice. The batch, its items and its chunks are created
idempotently; a chunk re-reads its items from the ledger and sends only those not yet
done, and what it sends is idempotent on Spotify's side (removing what is already gone
changes nothing), so a retried chunk never does harm.

One activity applies a few chunks (of one lane or several), one after another. Each chunk
costs the ledger one round trip: its ends written with the call's answer, its tallies
and the batch's traffic read, and the next chunk's items read and claimed (in progress),
in one transaction (``SpotifyActivities._finish_chunk``); the first chunk is claimed
alone. The request itself is counted sent before it leaves, apart
(``activities._spotify_calls``). A chunk is whole or not
begun: a cancellation (a pause, a cancel) or a worker shutting down stops the activity
between two chunks, never inside one.

The batch's items are made once the batch holds the account's turn (see
``activities.batch``): an item another enforcement removed after this plan saw it is
skipped then, naming that batch, so it is neither sent nor later put back by this
batch's rollback. Every request is counted in the ledger as it happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities import metrics
from activities._base import (
    KeepAlive,
    SpotifyActivities,
    kept_alive,
    refusal_error,
    until_stopped,
)
from activities._spotify_calls import TrafficRecorder
from enforcer.ledger import ActionItemRecord, ChunkEnd, ItemMark, LedgerError
from enforcer.models import (
    SNAPSHOT_AFTER,
    TERMINAL_ITEM_STATUSES,
    ApiTraffic,
    BatchKind,
    BatchStatus,
    ChunkFailure,
    ChunkLayout,
    ChunkOutcome,
    ChunksRequest,
    EnforcementSummary,
    EntityType,
    FinishBatch,
    ItemStatus,
    ItemTally,
    StartBatch,
)
from enforcer.spotify import Generation, Operation, SpotifyClient
from enforcer.spotify.errors import BadRequest, EndpointGone, Forbidden, NotFound, SpotifyHTTPError
from enforcer.spotify.limits import LIBRARY_URIS_PER_CALL, PLAYLIST_ITEMS_PER_CALL

ERRORS_IN_SUMMARY: Final = 20
HAND_BACK_AFTER: Final = timedelta(seconds=45)
"""An activity that has run this long hands back the chunks it has not begun, which the
batch gives to a new activity: where many accounts share the app's budget, a request may
wait up to ``LONGEST_IN_LINE`` for its turn (``activities._fair_line``), and the chunk in
hand then still ends well inside the chunk activity's two-minute start-to-close timeout;
the rest is dispatched anew through Temporal's fair queue."""

# Spotify refused these for good: the items end failed (a malformed request) or skipped
# (Spotify will not let this app or person do it), with Spotify's reason.
_SKIPPING_REFUSALS = (Forbidden, NotFound, EndpointGone)


class EnforcementActivities(SpotifyActivities):
    """The activities of ``EnforcementWorkflow``, sharing one ledger and the settings."""

    _completed_items = metrics.ITEMS_REMOVED

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
        return [self.apply_chunks]

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
        await self._ledger.add_plan_actions(start.batch_id, request.plan_id)
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

    @activity.defn(name="apply_enforcement_chunks")
    async def apply_chunks(self, request: ChunksRequest) -> ChunkOutcome:
        """One Spotify call per chunk (none for a chunk a retry finds done), chunk after
        chunk; it stops after the chunk in hand when cancelled (a pause, a cancel),
        when its worker shuts down or when it has run ``HAND_BACK_AFTER``, and says
        which chunks it finished."""
        traffic = self._chunk_traffic(request.batch_id)
        async with (
            kept_alive() as keep_alive,
            self._client(request.account_id, traffic=traffic) as client,
        ):
            return await until_stopped(
                lambda stop: self._apply_chunks(request, client, traffic, keep_alive, stop),
                run_at_most=HAND_BACK_AFTER,
            )

    async def _apply_chunks(
        self,
        request: ChunksRequest,
        client: SpotifyClient,
        traffic: TrafficRecorder,
        keep_alive: KeepAlive,
        stop: asyncio.Event,
    ) -> ChunkOutcome:
        applied = _Applied.recalled(keep_alive.details)
        latest: ApiTraffic | None = None
        left = [chunk for chunk in request.chunks if chunk not in applied.chunks]

        def stopping() -> bool:
            return stop.is_set() or activity.is_worker_shutdown()

        # The first chunk is claimed alone; each next one with the end of the one before.
        claimed = None
        if left and not stopping():
            claimed = await self._ledger.claim_chunk(request.batch_id, left[0])
        for index, chunk in enumerate(left):
            if claimed is None:  # stopped: the chunk in hand was the last
                break
            after = None if stopping() or index + 1 == len(left) else left[index + 1]
            end = await self._apply_chunk(request.batch_id, chunk, claimed, client, traffic, after)
            latest, claimed = end.traffic, end.claimed
            applied = applied.add(chunk, end.tallies, _legacy_operations(client))
            # Where a retry carries on from (the ledger says the same, read again).
            keep_alive.beat(applied.model_dump(mode="json"))
        if latest is None:
            latest = await self._ledger.traffic(request.batch_id)
        return ChunkOutcome(
            chunks=applied.chunks,
            tallies=applied.tallies,
            traffic=latest,
            legacy_operations=applied.legacy_operations,
        )

    async def _apply_chunk(
        self,
        batch_id: str,
        chunk: int,
        items: list[ActionItemRecord],
        client: SpotifyClient,
        traffic: TrafficRecorder,
        claim: int | None,
    ) -> ChunkEnd:
        """Makes the call for the chunk's claimed ``items`` still unfinished, and writes
        its end (the items' fates, the answers) with ``claim``, the next chunk, claimed
        in the same transaction."""
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        if not unfinished:
            return await self._finish_chunk(batch_id, chunk, (), traffic, claim=claim)
        refusal, snapshot = await self._calls(lambda: _remove(client, unfinished))
        keys = tuple(item.key for item in unfinished)
        return await self._finish_chunk(
            batch_id, chunk, [_ending(batch_id, keys, refusal, snapshot)], traffic, claim=claim
        )

    @activity.defn(name="give_up_enforcement_chunk")
    async def give_up_chunk(self, failure: ChunkFailure) -> ChunkOutcome:
        """Ends a chunk's unfinished items failed, with the error that ended the chunk."""
        request = failure.chunk
        end = await self._give_up(request.batch_id, request.chunk, failure.error)
        return ChunkOutcome(chunks=(request.chunk,), tallies=end.tallies, traffic=end.traffic)

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
            finish.batch_id, limit=ERRORS_IN_SUMMARY, status=ItemStatus.FAILED
        )
        skipped, reasons = await self._ledger.skip_reasons(finish.batch_id, limit=ERRORS_IN_SUMMARY)
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
            skipped=tuple(skipped),
            skipped_reasons_omitted=reasons - len(skipped),
        )
        await self._ledger.set_batch_status(
            finish.batch_id, finish.status, summary=summary.model_dump(mode="json")
        )
        return summary


def _ending(
    batch_id: str, keys: tuple[str, ...], refusal: SpotifyHTTPError | None, snapshot: str | None
) -> ItemMark:
    """How the chunk's items end: completed, or failed (400) or skipped (403, 404, 410)
    with Spotify's reason."""
    if refusal is None:
        # A playlist's new snapshot_id: a rollback that finds it still there knows
        # the playlist is as enforcement left it without reading it.
        kept = {} if snapshot is None else {SNAPSHOT_AFTER: snapshot}
        return ItemMark(
            batch_id, keys, ItemStatus.COMPLETED, after_state={"present": False, **kept}
        )
    if isinstance(refusal, _SKIPPING_REFUSALS):
        return ItemMark(batch_id, keys, ItemStatus.SKIPPED, error=str(refusal))
    return ItemMark(batch_id, keys, ItemStatus.FAILED, error=str(refusal))


class _Applied(BaseModel):
    """The chunks an activity finished so far, in its heartbeat details: a retry skips
    them (the ledger knows them ended too; this spares reading them again)."""

    model_config = ConfigDict(frozen=True)

    chunks: tuple[int, ...] = ()
    tallies: dict[EntityType, ItemTally] = {}
    legacy_operations: tuple[str, ...] = ()

    @classmethod
    def recalled(cls, details: Sequence[Any]) -> _Applied:
        return cls.model_validate(details[0]) if details else cls()

    def add(
        self, chunk: int, tallies: dict[EntityType, ItemTally], legacy: tuple[str, ...]
    ) -> _Applied:
        summed = dict(self.tallies)
        for kind, tally in tallies.items():
            summed[kind] = summed.get(kind, ItemTally()) + tally
        return _Applied(
            chunks=(*self.chunks, chunk),
            tallies=summed,
            legacy_operations=tuple(sorted({*self.legacy_operations, *legacy})),
        )


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
