"""`rollback` and `items`: undoing a batch, or chosen items of it, and seeing its items.

A running enforcement batch is rolled back by its own ``rollback`` update: it stops and
undoes itself, and its answer (its status) is told. An ended one is undone by a
``RollbackWorkflow`` whose ID, ``rollback/{batch}[/{selection}]``, makes a second start
of the same selection while one runs join it. The command reads the ledger first, to
show what would be put back and to refuse what cannot be rolled back before anything
starts; the workflow checks again (and refuses with the same kind of message) when it
begins. ``status`` of a rollback (``show_rollback``) shows it in the ledger's status.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities import REFUSED
from commands._batches import (
    BatchArgument,
    BatchEnded,
    as_json,
    check_owner,
    duration,
    emit_status_csv,
    follow,
    poll,
    print_skipped,
    progress_lines,
    recorded,
    send_control,
    standing,
    tally_table,
)
from commands._output import Column, Facts, FormatOption, OutputFormat, emit, print_rows, terminal
from commands._runtime import (
    AccountOption,
    AccountSession,
    account_session,
    batch_failed,
    exit_for_batch,
    fail,
    run,
)
from commands._temporal import describe, ended_canceled, root_cause, temporal_error, web_ui_url
from enforcer.dryrun import ENTITY_TITLES
from enforcer.ledger import ActionItemRecord, Ledger, UnknownBatch
from enforcer.markdown import rollback_details, rollback_summary
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    BatchKind,
    BatchStatus,
    EnforcementSummary,
    EntityType,
    ItemStatus,
    PlaylistItemBefore,
    RollbackRequest,
    RollbackSummary,
)
from workflows.connection import configured_task_queue, connect_temporal
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id
from workflows.search_attributes import (
    ENFORCEMENT_ACCOUNT,
    ENFORCEMENT_STATUS,
    new_batch_attributes,
)

ITEMS_PER_READ: Final = 5_000
LISTED: Final = 5
"""Failed and inexact items a summary names before pointing at ``items``."""
START_PATIENCE: Final = timedelta(seconds=10)
"""How long the command waits for the rollback to check its request (and so refuse
bad input on the spot, --watch or not) before leaving it to run."""

RollbackHandle = WorkflowHandle[RollbackWorkflow, RollbackSummary]
EnforcementHandle = WorkflowHandle[EnforcementWorkflow, EnforcementSummary]

ItemsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--items",
        help="Roll back only these items: keys as `starter.py items BATCH` lists them, "
        "separated by commas (the option may be repeated).",
    ),
]


# rollback ------------------------------------------------------------------------------


def rollback(
    batch_id: BatchArgument,
    items: ItemsOption = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the rollback until it ends, then summarise.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Start without asking (needed without a terminal).")
    ] = False,
    account: AccountOption = None,
) -> None:
    """Undo a batch, or chosen items of it: put back what it removed, where it was.

    A batch still running is stopped first (running Spotify calls finish). Shows how
    many items would be put back and asks, unless --yes. Rolling back again changes
    nothing. With --watch, exits 3 when the rollback ends failed or cancelled.
    """
    keys = _item_keys(items)
    if not yes and not sys.stdin.isatty():
        fail("no terminal to ask for confirmation: add --yes to start without asking")
    run(_rollback(batch_id, keys, watch=watch, confirmed=yes, account=account))


def _item_keys(given: Sequence[str] | None) -> tuple[str, ...] | None:
    """The keys of ``--items`` in the order given, each once; None without the option."""
    if given is None:
        return None
    keys = dict.fromkeys(key.strip() for value in given for key in value.split(","))
    keys.pop("", None)
    if not keys:
        fail("--items names no item: give item keys as `starter.py items BATCH` lists them")
    return tuple(keys)


async def _rollback(
    batch_id: str,
    keys: tuple[str, ...] | None,
    *,
    watch: bool,
    confirmed: bool,
    account: str | None,
) -> None:
    async with account_session(account) as session:
        temporal = await connect_temporal()
        enforcement = temporal.get_workflow_handle_for(EnforcementWorkflow.run, batch_id)
        described = await describe(enforcement)
        if described is not None and _is_running_enforcement(described):
            _check_owner(batch_id, described, session)
            if keys is not None:
                fail(
                    f"batch {batch_id!r} is still running: roll all of it back (without "
                    "--items), or cancel it and roll back the chosen items once it has ended"
                )
            if await _roll_back_running(
                temporal, session, enforcement, confirmed=confirmed, watch=watch
            ):
                return
            described = await describe(enforcement)  # it ended meanwhile: undo it as ended
        await _roll_back_ended(
            temporal, session, batch_id, keys, described, confirmed=confirmed, watch=watch
        )


def _is_running_enforcement(described: WorkflowExecutionDescription) -> bool:
    return (
        described.workflow_type == EnforcementWorkflow.__name__
        and described.status == WorkflowExecutionStatus.RUNNING
    )


def _check_owner(
    batch_id: str, described: WorkflowExecutionDescription, session: AccountSession
) -> None:
    owner = described.typed_search_attributes.get(ENFORCEMENT_ACCOUNT)
    if owner is not None and owner != session.account_label:
        fail(
            f"batch {batch_id!r} belongs to {owner!r}, not {session.account_label!r}: "
            "name it with --account"
        )


# A running batch: its own update -------------------------------------------------------


async def _roll_back_running(
    temporal: Client,
    session: AccountSession,
    enforcement: EnforcementHandle,
    *,
    confirmed: bool,
    watch: bool,
) -> bool:
    """Asks the running batch (its ``rollback`` update) to stop and undo itself; False
    if it ended meanwhile."""
    batch_id = enforcement.id
    try:
        removed = await _restorable(session.ledger, batch_id, None)
    except UnknownBatch:
        removed = Counter()  # just started: the workflow has not written its batch yet
    typer.echo(f"Batch {batch_id} is still running. Removed so far, to be put back:")
    terminal().print(_count_table(removed))
    if not confirmed and not typer.confirm(
        "Stop it and put back everything it removed?", default=False
    ):
        typer.echo("Nothing was changed.", err=True)
        return True
    try:
        now = await send_control(enforcement, "rollback")
    except BatchEnded:
        return False
    rollback_id = rollback_workflow_id(batch_id)
    typer.echo(
        f"Batch {batch_id} is rolling back ({now.value} now): the Spotify calls in flight "
        f"finish first, nothing new starts, then {rollback_id} puts back what it removed."
    )
    typer.echo(f"Web UI: {web_ui_url(temporal, batch_id)}")
    if not watch:
        typer.echo(f"Follow it with: starter.py status {batch_id} --watch")
        return True
    with terminal(stderr=True).status(f"Batch {batch_id} is stopping, then rolling back"):
        try:
            await enforcement.result()
        except WorkflowFailureError as error:
            # Canceled: the rollback was cancelled before it put anything back.
            if not ended_canceled(error):
                batch_failed(f"batch {batch_id} failed: {root_cause(error)}")
    found = await standing(session.ledger, batch_id)
    typer.echo(f"Batch {batch_id}: {found.status.value if found else 'ended'}")
    summary = await _result(
        temporal.get_workflow_handle_for(RollbackWorkflow.run, rollback_id), session.ledger
    )
    print_rollback_summary(summary)
    exit_for_batch(summary.status)
    return True


# An ended batch: a rollback workflow ----------------------------------------------------


async def _roll_back_ended(
    temporal: Client,
    session: AccountSession,
    batch_id: str,
    keys: tuple[str, ...] | None,
    described: WorkflowExecutionDescription | None,
    *,
    confirmed: bool,
    watch: bool,
) -> None:
    rollback_id = rollback_workflow_id(batch_id, keys)
    handle = temporal.get_workflow_handle_for(RollbackWorkflow.run, rollback_id)
    earlier = await describe(handle)
    if earlier is not None and earlier.status == WorkflowExecutionStatus.RUNNING:
        typer.echo(f"Rollback {rollback_id} of these items is running already: joining it.")
        await _follow(temporal, session.ledger, handle, batch_id, keys, watch=watch)
        return

    await _check_rollbackable(session, batch_id, described)
    restorable = await _restorable(session.ledger, batch_id, keys)
    if not restorable:
        typer.echo(
            f"Nothing to roll back: no {'chosen ' if keys else ''}item of batch {batch_id} "
            "is removed (each failed, was skipped, or is back already)."
        )
        if earlier is not None and earlier.status == WorkflowExecutionStatus.COMPLETED:
            typer.echo(f"The last rollback, {rollback_id}:")
            print_rollback_summary(await _result(handle, session.ledger))
        return
    typer.echo(f"Rolling back batch {batch_id} puts back:")
    terminal().print(_count_table(restorable))
    if not confirmed and not typer.confirm(
        f"Put back these {sum(restorable.values())} items?", default=False
    ):
        typer.echo("Nothing was started.", err=True)
        return
    try:
        handle = await temporal.start_workflow(
            RollbackWorkflow.run,
            RollbackRequest(
                account_id=session.account_id,
                batch_id=batch_id,
                item_keys=keys,
                account_label=session.account_label,
            ),
            id=rollback_id,
            task_queue=configured_task_queue(),
            # Running: join it. Ended: run again, which puts back whatever is still removed.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=rollback_summary(session.account_id, batch_id, restorable),
            static_details=rollback_details(
                namespace=temporal.namespace,
                batch_id=batch_id,
                account_id=session.account_id,
                counts=restorable,
                chosen=None if keys is None else sum(restorable.values()),
            ),
            search_attributes=new_batch_attributes(session.account_label),
        )
    except RPCError as error:
        raise temporal_error(error) from None
    await _await_checks(handle, session.ledger)
    await _follow(temporal, session.ledger, handle, batch_id, keys, watch=watch)


async def _check_rollbackable(
    session: AccountSession, batch_id: str, described: WorkflowExecutionDescription | None
) -> None:
    """Refuses, before anything starts, what the rollback workflow would refuse. A batch
    whose workflow closed without recording its end is ended in the ledger first
    (``recorded``): its completed items can be put back."""
    try:
        record = await session.ledger.batch(batch_id)
    except UnknownBatch:
        fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
    if record.account_id != session.account_id:
        fail(
            f"batch {batch_id!r} belongs to {record.account_id!r}, not "
            f"{session.account_id!r}: name it with --account"
        )
    if record.kind is BatchKind.ROLLBACK:
        fail(
            f"batch {batch_id!r} is a rollback (of {record.rollback_of!r}): a rollback "
            "cannot be rolled back; enforce the plan again instead"
        )
    if described is not None:  # the person's own batch: the truth may be recorded now
        record = await recorded(session.ledger, batch_id, described.status)
    if record.status not in TERMINAL_BATCH_STATUSES:
        fail(
            f"batch {batch_id!r} is still {record.status.value}: wait for it to start "
            "(or to finish) before rolling it back"
        )


async def _restorable(
    ledger: Ledger, batch_id: str, keys: tuple[str, ...] | None
) -> Counter[EntityType]:
    """Items a rollback would put back (those the batch removed and that are not back
    yet), per entity type; a key the batch does not have is an error naming it."""
    items = await _all_items(ledger, batch_id)
    if keys is not None:
        unknown = sorted(set(keys) - {item.key for item in items})
        if unknown:
            fail(
                f"not items of batch {batch_id!r} (`starter.py items {batch_id}` lists "
                f"them), nothing was started: {', '.join(unknown)}"
            )
    wanted = set(keys) if keys is not None else None
    return Counter(
        item.entity_type
        for item in items
        if item.status is ItemStatus.COMPLETED and (wanted is None or item.key in wanted)
    )


async def _await_checks(handle: RollbackHandle, ledger: Ledger) -> None:
    """Waits until the rollback has checked its request: a refusal ends the command
    with its message; a rollback that no worker has taken up is left to run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_PATIENCE.total_seconds()
    while loop.time() < deadline:
        described = await describe(handle)
        if described is None or described.status != WorkflowExecutionStatus.RUNNING:
            await _result(handle, ledger)
            return
        status = described.typed_search_attributes.get(ENFORCEMENT_STATUS)
        if status is not None and status != BatchStatus.PENDING.value:
            return
        await asyncio.sleep(0.1)
    typer.echo(f"The rollback has not started within {duration(START_PATIENCE.total_seconds())}:")
    typer.echo("is a worker running (`worker.py`)?")


async def _follow(
    temporal: Client,
    ledger: Ledger,
    handle: RollbackHandle,
    batch_id: str,
    keys: tuple[str, ...] | None,
    *,
    watch: bool,
) -> None:
    if watch:
        summary = await watch_rollback(handle, ledger)
        print_rollback_summary(summary)
        exit_for_batch(summary.status)
        return
    typer.echo(f"Rollback {handle.id} is running.")
    typer.echo(f"Web UI: {web_ui_url(temporal, handle.id)}")
    items = f" --items {','.join(keys)}" if keys is not None else ""
    typer.echo(f"Follow it with: starter.py rollback {batch_id}{items} --watch")


async def _result(handle: RollbackHandle, ledger: Ledger) -> RollbackSummary:
    """The rollback's summary (the ledger's, for a rollback that ended cancelled); a
    refusal or failure ends the command with its message."""
    try:
        return await handle.result()
    except WorkflowFailureError as error:
        if ended_canceled(error):
            return await _ledger_rollback_summary(ledger, await _run_record(handle, ledger))
        # The workflow fails with the activity's refusal itself: bad input, nothing changed.
        if isinstance(error.cause, ApplicationError) and error.cause.type == REFUSED:
            fail(error.cause.message)
        batch_failed(f"rollback {handle.id} failed: {root_cause(error)}")
    except RPCError as error:
        raise temporal_error(error) from None


async def _run_record(handle: RollbackHandle, ledger: Ledger) -> str:
    """The ledger's batch of the rollback's latest run: its workflow ID, or ``#2``,
    ``#3``... for a later run of the same ID (each run records its first run ID)."""
    described = await describe(handle)
    first_run = described.raw_description.workflow_execution_info.first_run_id if described else ""
    attempt = 1
    while True:
        batch_id = handle.id if attempt == 1 else f"{handle.id}#{attempt}"
        try:
            record = await ledger.batch(batch_id)
        except UnknownBatch:
            return handle.id if attempt == 1 else f"{handle.id}#{attempt - 1}"
        if record.options.get("run_id") == first_run:
            return batch_id
        attempt += 1


async def watch_rollback(handle: RollbackHandle, ledger: Ledger) -> RollbackSummary:
    """Shows the ``progress`` query every second until the rollback ends; its summary."""
    return await follow(
        _result(handle, ledger),
        lambda: poll(handle.query(RollbackWorkflow.progress)),
        starting="rolling back",
        title=lambda progress: f"rollback {progress.status.value}",
        details=progress_lines,
        carries_on=f"the rollback carries on: starter.py status {handle.id}",
    )


# printing --------------------------------------------------------------------------------


def _count_table(counts: Counter[EntityType]) -> Table:
    table = Table(title_justify="left")
    table.add_column("What")
    table.add_column("Items", justify="right")
    for entity in EntityType:
        if counts[entity]:
            table.add_row(ENTITY_TITLES[entity], str(counts[entity]))
    table.add_row("All", str(sum(counts.values())))
    return table


def print_rollback_summary(summary: RollbackSummary) -> None:
    """A rollback's result: what was put back per entity type, what failed and why,
    what is back but not as it was, the calls and the time it took."""
    console = terminal()
    console.print(
        f"Rollback {summary.batch_id} of batch {summary.rollback_of} "
        f"(account {summary.account_id}): {summary.status.value}"
    )
    table = Table(title_justify="left")
    for header in ("What", "To restore", "Restored", "Not restored"):
        table.add_column(header, justify="left" if header == "What" else "right")
    for entity in EntityType:
        if entity not in summary.totals:
            continue
        total = summary.totals[entity]
        restored = summary.restored.get(entity, 0)
        table.add_row(ENTITY_TITLES[entity], str(total), str(restored), str(total - restored))
    console.print(table)
    lines = Facts()
    lines.add_row("API calls", str(summary.api_calls))
    lines.add_row(
        "Rate-limit waits",
        f"{summary.rate_limit_waits} ({duration(summary.rate_limit_wait_seconds)} in all)",
    )
    lines.add_row("Duration", duration(summary.duration_seconds))
    if summary.nothing_to_undo:
        lines.add_row(
            "Nothing to undo",
            f"{summary.nothing_to_undo} items: failed, skipped or back already",
        )
    if summary.calls_found_applied:
        lines.add_row(
            "Found applied",
            f"{summary.calls_found_applied} calls a retry found done already, not sent again",
        )
    if summary.replans:
        lines.add_row("Re-planned", f"{summary.replans} times: a playlist changed meanwhile")
    if summary.schedule_paused is not None:
        lines.add_row(
            "Schedule",
            f"{summary.schedule_paused} is paused: its runs would remove again what was "
            "put back; `starter.py schedule unpause` once the blocklist is as you want it",
        )
    if summary.original_status is not None and summary.original_items_back is not None:
        back = summary.original_items_back
        lines.add_row(
            "Batch undone",
            f"{summary.rollback_of} is {summary.original_status.value}: {back.back} of "
            f"{back.removed} removed items back",
        )
    console.print(lines)
    _print_listed(
        console,
        "Failed",
        [(error.name, error.error) for error in summary.failed],
        summary.failed_omitted,
        f"starter.py items {summary.batch_id} --status failed",
    )
    print_skipped(console, summary.skipped, summary.skipped_reasons_omitted)
    _print_listed(
        console,
        "Back, but not as they were",
        [(item.name, item.why) for item in summary.not_restored_exactly],
        summary.not_restored_exactly_omitted,
        None,
    )


def _print_listed(
    console: Console,
    title: str,
    rows: Sequence[tuple[str, str]],
    omitted: int,
    every_one: str | None,
) -> None:
    if not rows:
        return
    print_rows(
        console,
        f"{title}: {len(rows) + omitted}",
        [Column("name", "Item"), Column("why", "Why")],
        [[name, why] for name, why in rows[:LISTED]],
    )
    more = omitted + max(0, len(rows) - LISTED)
    if more:
        console.print(f"... and {more} more.")
        if every_one is not None:
            console.print(f"Every one: {every_one}")


# items -----------------------------------------------------------------------------------


def items(
    batch_id: BatchArgument,
    status_filter: Annotated[
        ItemStatus | None,
        typer.Option("--status", case_sensitive=False, help="Only items in this status."),
    ] = None,
    output: FormatOption = OutputFormat.TABLE,
    account: AccountOption = None,
) -> None:
    """List a batch's items in plan order: the keys `rollback --items` takes."""
    run(_items(batch_id, status_filter, output, account))


async def _items(
    batch_id: str, status_filter: ItemStatus | None, output: OutputFormat, account: str | None
) -> None:
    async with account_session(account) as session:
        await check_owner(session, batch_id, None)
        try:
            found = await _all_items(session.ledger, batch_id, status_filter)
        except UnknownBatch:
            fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
    emit(
        [
            {
                "key": item.key,
                "entity_type": item.entity_type.value,
                "name": item.name,
                "playlist": (
                    item.before.playlist_name
                    if isinstance(item.before, PlaylistItemBefore)
                    else None
                ),
                "status": item.status.value,
                "error": item.error,
            }
            for item in found
        ],
        [
            Column("key", "Key", whole=True),
            Column("entity_type", "What"),
            Column("name", "Name"),
            Column("playlist", "Playlist"),
            Column("status", "Status"),
            Column("error", "Why"),
        ],
        output,
        title=f"Items of {batch_id}",
        empty="No items" + (f" {status_filter.value}." if status_filter else "."),
    )


async def _all_items(
    ledger: Ledger, batch_id: str, status: ItemStatus | None = None
) -> list[ActionItemRecord]:
    found: list[ActionItemRecord] = []
    while page := await ledger.action_items(
        batch_id, status=status, offset=len(found), limit=ITEMS_PER_READ
    ):
        found.extend(page)
    return found


async def show_rollback(
    temporal: Client,
    ledger: Ledger,
    batch_id: str,
    described: WorkflowExecutionDescription | None,
    *,
    watch: bool,
    output: OutputFormat,
) -> None:
    """`status` of a rollback: its progress while it runs, its summary once ended, in the
    status the ledger records. ``batch_id`` is the workflow's ID (its latest run is
    shown) or a run's batch ID in the ledger (``rollback/...#2``)."""
    handle = temporal.get_workflow_handle_for(RollbackWorkflow.run, batch_id)
    running = described is not None and described.status == WorkflowExecutionStatus.RUNNING
    if running and not watch:
        progress = await handle.query(RollbackWorkflow.progress)
        found = await standing(ledger, progress.batch_id)
        state = found.status if found is not None else progress.status
        if output is OutputFormat.TABLE:
            console = terminal()
            console.print(
                f"Rollback {progress.batch_id} of batch {progress.rollback_of}: {state.value}"
            )
            console.print(
                tally_table(
                    progress.totals, progress.tallies, planned="To restore", done="Restored"
                )
            )
            console.print(progress_lines(progress))
        elif output is OutputFormat.CSV:
            emit_status_csv(progress.batch_id, running=True, status=state,
                            totals=progress.totals, tallies=progress.tallies)  # fmt: skip
        else:
            typer.echo(as_json({"state": "running", "batch_id": progress.batch_id,
                                "rollback_of": progress.rollback_of, "status": state.value,
                                "progress": progress}))  # fmt: skip
        return
    if running:
        summary = await watch_rollback(handle, ledger)
    elif described is not None:
        summary = await _result(handle, ledger)
    else:
        summary = await _ledger_rollback_summary(ledger, batch_id)
    found = await standing(ledger, summary.batch_id)
    if found is not None:
        summary = summary.model_copy(update={"status": found.status})
    if output is OutputFormat.TABLE:
        print_rollback_summary(summary)
    elif output is OutputFormat.CSV:
        emit_status_csv(summary.batch_id, running=False, status=summary.status,
                        totals=summary.totals,
                        tallies=await ledger.tallies(summary.batch_id))  # fmt: skip
    else:
        typer.echo(as_json({"state": "ended", "batch_id": summary.batch_id,
                            "rollback_of": summary.rollback_of, "status": summary.status.value,
                            "summary": summary}))  # fmt: skip
    exit_for_batch(summary.status)


async def _ledger_rollback_summary(ledger: Ledger, batch_id: str) -> RollbackSummary:
    """A rollback Temporal no longer knows (or a run's ``#n`` ID): the ledger's record."""
    try:
        record = await ledger.batch(batch_id)
    except UnknownBatch:
        fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
    if record.summary is not None:
        return RollbackSummary.model_validate(record.summary)
    # It ended without writing its summary (terminated, say), or still runs: the items.
    layout = await ledger.chunk_layout(batch_id)
    tallies = await ledger.tallies(batch_id)
    return RollbackSummary(
        batch_id=batch_id,
        rollback_of=record.rollback_of or "",
        account_id=record.account_id,
        status=record.status,
        totals=layout.totals if layout is not None else {},
        restored={kind: tally.completed for kind, tally in tallies.items() if tally.completed},
    )
