"""PlanningWorkflow: read the whole library durably, then write the dry run to the ledger.

It reads as a person would expect a careful tool to: every listing to its last page,
the playlists that may be edited entry by entry, then one plan. It carries only IDs
and counts; the library's pages and the plan's actions live in the ledger.

Unless asked for a full scan, it reads from Spotify only what can have changed since
the account's last completed scan (younger than ``ENFORCER_SCAN_MAX_AGE``) and takes
the rest from that scan inside the ledger: the plan is the one a full scan would make,
with the same ID. Its own scan then becomes the account's last completed one.

Its state is one ``PlanningProgress``, which the ``progress`` query answers: each step's
state and the figures of what is done. Nothing is added to the history to feed it: the
figures of a scan still running are in its heartbeats, its requests in the ledger
(``PlanningProgress.live`` adds them, in the starter).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.policies import LEDGER_RETRY, SPOTIFY_PATIENCE, SPOTIFY_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.library import LibraryActivities
    from enforcer.models import (
        BuildPlanRequest,
        CompletedScan,
        LibrarySection,
        PlanningProgress,
        PlanOptions,
        PlanRequest,
        PlanResult,
        ScanPlaylistItemsRequest,
        ScanSectionRequest,
        ScanState,
        ScanStep,
    )

PLAYLISTS_PER_ACTIVITY = 100
"""Playlists one scan activity reads; a few such activities run side by side."""

# A scan heartbeats after every page: a worker that dies is noticed within seconds
# and the next attempt resumes from the last page stored.
SCAN_HEARTBEAT_TIMEOUT = timedelta(seconds=10)


INCREMENTAL_SCAN = "incremental-scan"
"""Runs begun before scans were kept read everything and discard their scan, as they ran."""


def planning_workflow_id(account_id: str, options: PlanOptions, *, full: bool = False) -> str:
    """One planning at a time per account, options and kind of scan: a second start
    joins it (a full scan never joins an incremental one, nor the reverse)."""
    scope = "+collaborative" if options.include_collaborative else ""
    whole = "+full" if full else ""
    return f"plan/{account_id}/{options.policy}{scope}{whole}"


@workflow.defn
class PlanningWorkflow:
    def __init__(self) -> None:
        self._progress = PlanningProgress(scan_id="", stage="checking the inputs")
        self._playlist_count = 0

    @workflow.run
    async def run(self, request: PlanRequest) -> PlanResult:
        scan_id = f"{workflow.info().workflow_id}/{workflow.info().run_id}"
        self._progress = self._progress.model_copy(update={"scan_id": scan_id})
        await workflow.execute_activity_method(
            LibraryActivities.check_inputs,
            request,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )
        previous: str | None = None
        incremental = workflow.patched(INCREMENTAL_SCAN)
        if incremental:
            previous = await workflow.execute_activity_method(
                LibraryActivities.previous_scan,
                request,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=LEDGER_RETRY,
            )
        self._show("reading liked songs, albums, artists and playlists")
        for section in LibrarySection:
            self._update(ScanStep(section.value), state=ScanState.READING)
        await asyncio.gather(
            *(self._scan_section(scan_id, request, section, previous) for section in LibrarySection)
        )
        playlists = self._playlist_count
        self._show(f"reading the entries of {playlists} playlists")
        self._update(
            ScanStep.PLAYLIST_ENTRIES,
            state=ScanState.READING if playlists else ScanState.DONE,
            playlists=playlists,
        )
        await asyncio.gather(
            *(
                self._scan_playlists(
                    scan_id, request, first, first + PLAYLISTS_PER_ACTIVITY, previous
                )
                for first in range(0, playlists, PLAYLISTS_PER_ACTIVITY)
            )
        )
        self._show("matching the library against the blocklist")
        result = await workflow.execute_activity_method(
            LibraryActivities.build_plan,
            BuildPlanRequest(
                scan_id=scan_id, account_id=request.account_id, options=request.options
            ),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=LEDGER_RETRY,
        )
        if incremental:
            await workflow.execute_activity_method(
                LibraryActivities.complete_scan,
                CompletedScan(scan_id=scan_id, account_id=request.account_id),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=LEDGER_RETRY,
            )
        else:
            await workflow.execute_activity_method(
                LibraryActivities.discard_scan,
                scan_id,
                start_to_close_timeout=timedelta(minutes=5),
            )
        self._progress = self._progress.model_copy(update={"plan_id": result.plan_id})
        self._show(f"plan {result.plan_id} is ready")
        return result

    @workflow.query
    def progress(self) -> PlanningProgress:
        return self._progress

    async def _scan_section(
        self,
        scan_id: str,
        request: PlanRequest,
        section: LibrarySection,
        previous: str | None,
    ) -> None:
        progress = await workflow.execute_activity_method(
            LibraryActivities.scan_section,
            ScanSectionRequest(
                scan_id=scan_id,
                account_id=request.account_id,
                section=section,
                previous_scan_id=previous,
            ),
            start_to_close_timeout=timedelta(minutes=30),
            schedule_to_close_timeout=SPOTIFY_PATIENCE,
            heartbeat_timeout=SCAN_HEARTBEAT_TIMEOUT,
            retry_policy=SPOTIFY_RETRY,
        )
        if section is LibrarySection.PLAYLISTS:
            self._playlist_count = progress.items
        self._update(
            ScanStep(section.value),
            state=ScanState.DONE,
            pages=progress.pages,
            items=progress.items,
        )

    async def _scan_playlists(
        self, scan_id: str, request: PlanRequest, first: int, stop: int, previous: str | None
    ) -> None:
        progress = await workflow.execute_activity_method(
            LibraryActivities.scan_playlist_items,
            ScanPlaylistItemsRequest(
                scan_id=scan_id,
                account_id=request.account_id,
                options=request.options,
                first=first,
                stop=stop,
                previous_scan_id=previous,
            ),
            start_to_close_timeout=timedelta(minutes=30),
            schedule_to_close_timeout=SPOTIFY_PATIENCE,
            heartbeat_timeout=SCAN_HEARTBEAT_TIMEOUT,
            retry_policy=SPOTIFY_RETRY,
        )
        entries = self._progress.steps[ScanStep.PLAYLIST_ENTRIES]
        playlists_done = entries.playlists_done + min(stop, self._playlist_count) - first
        self._update(
            ScanStep.PLAYLIST_ENTRIES,
            state=ScanState.DONE if playlists_done >= self._playlist_count else ScanState.READING,
            pages=entries.pages + progress.pages,
            items=entries.items + progress.items,
            playlists_done=playlists_done,
            done_from=(*entries.done_from, first),
        )

    def _update(self, step: ScanStep, **changes: Any) -> None:
        steps = {
            **self._progress.steps,
            step: self._progress.steps[step].model_copy(update=changes),
        }
        self._progress = self._progress.model_copy(update={"steps": steps})

    def _show(self, stage: str) -> None:
        """What the Web UI and the ``progress`` query show of where the planning is."""
        self._progress = self._progress.model_copy(update={"stage": stage})
        workflow.set_current_details(stage)
