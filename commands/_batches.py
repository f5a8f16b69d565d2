"""What the enforcement and rollback commands share about one batch: where it stands
(the ledger's truth, and which rollbacks undid it), the person's controls (Temporal
updates), following it while it runs, and the pieces of printing it.

Invariants:
- A batch's status is the ledger's: the workflows write every change of it there
  (a rollback also sets the status of the batch it undid), before an update answers.
  ``status``, ``batches`` and the controls read it through ``standing``, so they cannot
  disagree; a running workflow adds only live counts (its ``progress`` query).
- A control (pause, resume, cancel, rollback) is a Temporal update. What the workflow's
  validator refuses changes nothing and reaches the person as one line, exit 1; what it
  accepts is answered with the batch's status after it, which the person reads in words.
- One write to the ledger only: a batch whose workflow closed without recording its
  end (terminated in the Web UI, say) is ended there as Temporal ended it (``recorded``,
  under ``standing``), so that no view says running of a batch that is not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

import typer
from pydantic import BaseModel, ConfigDict
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.batch import ENDED_AS
from commands._output import Cell, Column, Facts, OutputFormat, emit, terminal
from commands._runtime import AccountSession, fail
from commands._temporal import describe, root_cause, temporal_error
from enforcer.dryrun import ENTITY_TITLES
from enforcer.ledger import BatchRecord, Ledger, UnknownBatch
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    BatchKind,
    BatchStatus,
    EnforcementProgress,
    EntityType,
    ItemsBack,
    ItemStatus,
    ItemTally,
    RollbackProgress,
    SkipReason,
)
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow
from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS

P = TypeVar("P", bound=EnforcementProgress | RollbackProgress)
R = TypeVar("R")

POLL_INTERVAL: Final = timedelta(seconds=1)
CONTROL_PATIENCE: Final = timedelta(seconds=10)
"""How long a control waits for the workflow's answer (a worker must take it up)."""

BatchArgument = Annotated[
    str,
    typer.Argument(
        help="A batch ID, as `enforce`, `batches` or `rollback` prints it "
        "(enforce/ACCOUNT/PLAN, or rollback/... for a rollback)."
    ),
]


# Where a batch stands ------------------------------------------------------------------


class RollbackShown(BaseModel):
    """One rollback of a batch, as ``status`` and ``batches`` name it."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    status: BatchStatus
    restored: int
    """Items this rollback put back."""


class Standing(BaseModel):
    """Where a batch stands, as the ledger records it."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    kind: BatchKind
    status: BatchStatus
    rollback_of: str | None = None
    """A rollback: the batch it undoes."""
    items_back: ItemsBack | None = None
    """An enforcement that a rollback has undone, in whole or in part: how much is back."""
    rolled_back_by: tuple[RollbackShown, ...] = ()
    """An enforcement: the rollbacks that undo it, oldest first."""

    @property
    def last_rollback(self) -> str | None:
        return self.rolled_back_by[-1].batch_id if self.rolled_back_by else None


async def recorded(
    ledger: Ledger, batch_id: str, workflow: WorkflowExecutionStatus | None
) -> BatchRecord:
    """The batch's ledger record (``UnknownBatch`` if none), ended first, as Temporal
    ended it, when the ledger has it unended and ``workflow``, its workflow's status,
    says it closed without recording its end (terminated in the Web UI, say)."""
    record = await ledger.batch(batch_id)
    if record.status in TERMINAL_BATCH_STATUSES or workflow not in ENDED_AS:
        return record
    await ledger.end_unended_batch(batch_id, *ENDED_AS[workflow])
    return await ledger.batch(batch_id)


async def standing(
    ledger: Ledger, batch_id: str, workflow: WorkflowExecutionStatus | None = None
) -> Standing | None:
    """The ledger's truth about ``batch_id``; None when the ledger has no such batch.
    ``workflow``: its workflow's status, when known (see ``recorded``)."""
    try:
        record = await recorded(ledger, batch_id, workflow)
    except UnknownBatch:
        return None
    if record.kind is BatchKind.ROLLBACK:
        return Standing(
            batch_id=batch_id,
            kind=record.kind,
            status=record.status,
            rollback_of=record.rollback_of,
        )
    rollbacks = [
        RollbackShown(
            batch_id=undo.id,
            status=undo.status,
            restored=sum(tally.completed for tally in (await ledger.tallies(undo.id)).values()),
        )
        for undo in await ledger.rollbacks_of(batch_id)
    ]
    items_back = None
    if rollbacks:
        counts = await ledger.item_counts(batch_id)
        back = counts[ItemStatus.ROLLED_BACK]
        items_back = ItemsBack(back=back, removed=back + counts[ItemStatus.COMPLETED])
    return Standing(
        batch_id=batch_id,
        kind=record.kind,
        status=record.status,
        items_back=items_back,
        rolled_back_by=tuple(rollbacks),
    )


async def check_owner(
    session: AccountSession, batch_id: str, described: WorkflowExecutionDescription | None
) -> None:
    """Refuses a batch of another account than the command's (``--account``, else the
    only one logged in), naming both. The ledger says whose a batch is; a batch the
    ledger does not have yet, its workflow's account attribute. Unknown: not refused here
    (the command says it is unknown)."""
    owner: str | None
    try:
        owner, mine = (await session.ledger.batch(batch_id)).account_id, session.account_id
    except UnknownBatch:
        if described is None:
            return
        owner = described.typed_search_attributes.get(ENFORCEMENT_ACCOUNT)
        mine = session.account_label
    if owner is not None and owner != mine:
        fail(
            f"batch {batch_id!r} belongs to account {owner!r}, not {mine!r}: "
            "name that account with --account"
        )


def undone_words(found: Standing) -> str | None:
    """What rollbacks did to an enforcement batch, in a line; None if none ran."""
    if found.items_back is None:
        return None
    rollbacks = ", ".join(
        f"{undo.batch_id} ({undo.status.value}, {undo.restored} put back)"
        for undo in found.rolled_back_by
    )
    return (
        f"{found.items_back.back} of {found.items_back.removed} removed items back; "
        f"rolled back by {rollbacks}"
    )


def undone_document(found: Standing | None) -> dict[str, Any]:
    """The same for ``--format json``: ``items_back`` and ``rolled_back_by``."""
    if found is None:
        return {"items_back": None, "rolled_back_by": []}
    return {
        "items_back": found.items_back.model_dump() if found.items_back else None,
        "rolled_back_by": [undo.model_dump(mode="json") for undo in found.rolled_back_by],
    }


# The person's controls -----------------------------------------------------------------

Control = Literal["pause", "resume", "cancel", "rollback"]


async def control(temporal: Client, ledger: Ledger, batch_id: str, name: Control) -> None:
    """Sends ``name`` to the running batch (an enforcement or a rollback) as an update
    and says what became of it; a refusal, an unknown or ended batch end the command."""
    handle = temporal.get_workflow_handle(batch_id)
    described = await describe(handle)
    if described is None:
        fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
    kinds = {EnforcementWorkflow.__name__: "Batch", RollbackWorkflow.__name__: "Rollback"}
    what = kinds.get(described.workflow_type)
    if what is None:
        fail(
            f"{batch_id!r} is a {described.workflow_type}, not a batch: there is nothing to {name}"
        )
    if described.status != WorkflowExecutionStatus.RUNNING:
        # In the ledger's words, as `status` and `batches` say it; Temporal's when the
        # ledger has no record of it.
        found = await standing(ledger, batch_id)
        if found is not None:
            ended = found.status.value
        else:
            ended = described.status.name.lower() if described.status else "ended"
        fail(f"{what.lower()} {batch_id!r} has ended ({ended}): there is nothing to {name}")
    before = described.typed_search_attributes.get(ENFORCEMENT_STATUS)
    try:
        after = await send_control(handle, name)
    except BatchEnded as ended:
        fail(str(ended))
    typer.echo(f"{what} {batch_id} {_answer(name, before, after, what)}")


class BatchEnded(ValueError):
    """The batch's workflow ended before a control reached it: nothing was changed."""


async def send_control(handle: WorkflowHandle[Any, Any], name: Control) -> BatchStatus:
    """The workflow's answer to the update ``name``: the batch's status after it. A
    refusal ends the command with the validator's reason; a workflow that has ended
    meanwhile is ``BatchEnded``."""
    try:
        answer: BatchStatus = await handle.execute_update(
            name, result_type=BatchStatus, rpc_timeout=CONTROL_PATIENCE
        )
    except WorkflowUpdateFailedError as error:
        fail(f"{name} refused, nothing changed: {root_cause(error)}")
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        fail(
            f"{handle.id} did not answer within {CONTROL_PATIENCE.total_seconds():.0f} s: is "
            f"a worker running (`worker.py`)? The {name} takes effect once one takes it up"
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise BatchEnded(
                f"batch {handle.id!r} ended meanwhile: there is nothing to {name}"
            ) from None
        raise temporal_error(error) from None
    return answer


def _answer(name: Control, before: str | None, after: BatchStatus, what: str) -> str:
    in_flight = "restores" if what == "Rollback" else "Spotify calls"
    if name == "pause":
        if after is BatchStatus.PAUSED:
            if before == BatchStatus.PAUSED.value:
                return "is already paused."
            return f"paused: the {in_flight} in flight finish, nothing new starts until resume."
        return f"will stay paused once it can run ({after.value} now): resume carries on."
    if name == "resume":
        if after is BatchStatus.RUNNING:
            return "resumed."
        return f"resumed: it is {after.value} now."
    if name == "cancel":
        rest = "is not put back" if what == "Rollback" else "is skipped"
        return f"cancelling: the {in_flight} in flight finish first, the rest {rest}."
    return (
        f"rolling back: the {in_flight} in flight finish first, nothing new starts, "
        "then a rollback puts back what it removed."
    )


# Following a batch ------------------------------------------------------------------


async def poll(query: Awaitable[P]) -> P | None:
    """A ``progress`` query's answer; None when the workflow cannot answer now."""
    try:
        return await query
    except RPCError:
        return None  # not taken up yet, between runs, or just ended: the next poll tells


async def follow(
    result: Awaitable[R],
    progress: Callable[[], Awaitable[P | None]],
    *,
    starting: str,
    title: Callable[[P], str],
    details: Callable[[P], RenderableType],
    carries_on: str,
) -> R:
    """Shows the batch's progress on stderr until ``result`` is ready; its result.
    Ctrl-C stops the watching, not the batch: ``carries_on`` says where to look next."""
    future = asyncio.ensure_future(result)
    console = terminal(stderr=True)
    try:
        return await _watch_progress(
            future, progress, console=console, starting=starting, title=title, details=details
        )
    except asyncio.CancelledError:  # Ctrl-C
        console.print(f"Stopped watching; {carries_on}")
        raise
    finally:
        future.cancel()


async def _watch_progress(
    result: asyncio.Future[R],
    poll_progress: Callable[[], Awaitable[P | None]],
    *,
    console: Console,
    starting: str,
    title: Callable[[P], str],
    details: Callable[[P], RenderableType],
) -> R:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[items]}"),
        console=console,
    )
    task = bar.add_task(starting, total=None, items="")
    # Transient: the summary printed next takes the display's place.
    with Live(bar, console=console, transient=True) as live:
        while not result.done():
            progress = await poll_progress()
            if progress is not None:
                done = sum(tally.done for tally in progress.tallies.values())
                total = sum(progress.totals.values())
                bar.update(
                    task,
                    description=title(progress),
                    completed=done,
                    total=total or None,
                    items=f"{done}/{total} items" if total else "",
                )
                live.update(Group(bar, details(progress)))
            await asyncio.wait([result], timeout=POLL_INTERVAL.total_seconds())
    return result.result()


# Printing --------------------------------------------------------------------------------


def tally_table(
    totals: Mapping[EntityType, int],
    tallies: Mapping[EntityType, ItemTally],
    *,
    planned: str = "Planned",
    done: str = "Removed",
) -> Table:
    """Items per entity type, and of all types: how many to do, done, failed, skipped
    (once a batch has ended, the last three add up to the first)."""
    table = Table(title_justify="left")
    for header in ("What", planned, done, "Failed", "Skipped"):
        table.add_column(header, justify="left" if header == "What" else "right")
    kinds = [entity for entity in EntityType if entity in totals or entity in tallies]
    for entity in kinds:
        _tally_row(table, ENTITY_TITLES[entity], totals.get(entity, 0), tallies.get(entity))
    if len(kinds) > 1:
        table.add_section()
        _tally_row(table, "All", sum(totals.values()), sum(tallies.values(), start=ItemTally()))
    return table


def _tally_row(table: Table, what: str, planned: int, tally: ItemTally | None) -> None:
    tally = tally or ItemTally()
    table.add_row(what, str(planned), str(tally.completed), str(tally.failed), str(tally.skipped))


def print_skipped(console: Console, reasons: Sequence[SkipReason], omitted: int) -> None:
    """Why items were skipped, a line per reason with how many: not errors."""
    if not reasons:
        return
    lines = Facts()
    for reason in reasons:
        lines.add_row(f"{reason.items} skipped", reason.reason)
    if omitted:
        lines.add_row("...", f"and {omitted} more reasons")
    console.print("Skipped, not errors:")
    console.print(lines)


def progress_lines(progress: EnforcementProgress | RollbackProgress) -> Facts:
    """A running batch's chunks, calls, waits, what it waits for and time left."""
    lines = Facts()
    lines.add_row("Chunks", f"{progress.chunks_done} of {progress.chunks_total}")
    lines.add_row("API calls", str(progress.api_calls))
    lines.add_row(
        "Rate-limit waits",
        f"{progress.rate_limit_waits} ({duration(progress.rate_limit_wait_seconds)})",
    )
    if progress.waiting_for:
        lines.add_row("Waiting for", progress.waiting_for)
    running = progress.status is BatchStatus.RUNNING
    if running and isinstance(progress, EnforcementProgress) and progress.eta_seconds is not None:
        lines.add_row("Time left", f"about {duration(progress.eta_seconds)}")
    return lines


STATUS_COLUMNS: Final = (
    Column("batch_id", "Batch", whole=True),
    Column("state", "State"),
    Column("status", "Status"),
    Column("entity_type", "What"),
    Column("planned", "Planned"),
    Column("completed", "Completed"),
    Column("failed", "Failed"),
    Column("skipped", "Skipped"),
)
"""``status --format csv``: one row per entity type of the batch, each with the batch's
ID, state (running or ended) and status; for a rollback, planned is what it is to put
back and completed what it put back."""


def emit_status_csv(
    batch_id: str,
    *,
    running: bool,
    status: BatchStatus,
    totals: Mapping[EntityType, int],
    tallies: Mapping[EntityType, ItemTally],
) -> None:
    rows: list[dict[str, Cell]] = []
    for entity in EntityType:
        if entity not in totals and entity not in tallies:
            continue
        tally = tallies.get(entity, ItemTally())
        rows.append(
            {
                "batch_id": batch_id,
                "state": "running" if running else "ended",
                "status": status.value,
                "entity_type": entity.value,
                "planned": str(totals.get(entity, 0)),
                "completed": str(tally.completed),
                "failed": str(tally.failed),
                "skipped": str(tally.skipped),
            }
        )
    emit(rows, STATUS_COLUMNS, OutputFormat.CSV, title="", empty="")


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def as_json(document: Mapping[str, Any]) -> str:
    """A ``status`` document: pydantic values in their JSON form."""
    return json.dumps(
        {key: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
         for key, value in document.items()},
        indent=2,
        ensure_ascii=False,
    )  # fmt: skip
