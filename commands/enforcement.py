"""`enforce`, `status`, `cancel`, `pause`, `resume` and `batches`: carrying out a plan.

A batch is one ``EnforcementWorkflow`` whose workflow ID, ``enforce/{account}/{plan}``,
is also the batch's ID in the ledger: starting the same plan twice joins the running
batch or shows the finished one's result, and never writes to Spotify a second time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from commands._inputs import whole_number_from
from commands._output import Column, FormatOption, OutputFormat, emit
from commands._runtime import AccountOption, AccountSession, account_session, fail, run
from commands.planning import ExamplesOption, _root_cause, _run_planning
from enforcer.config import Settings
from enforcer.dryrun import render_plan
from enforcer.ledger import Ledger, UnknownBatch
from enforcer.models import (
    BatchStatus,
    EnforcementProgress,
    EnforcementRequest,
    EnforcementSummary,
    EntityType,
    ItemTally,
    Plan,
    PlanOptions,
    RollbackProgress,
)
from enforcer.session import open_ledger
from workflows.connection import configured_task_queue, connect_temporal
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id
from workflows.rollback import RollbackWorkflow
from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS

POLL_INTERVAL: Final = timedelta(seconds=1)

P = TypeVar("P", bound=EnforcementProgress | RollbackProgress)
R = TypeVar("R")
ERRORS_SHOWN: Final = 5
"""Item errors a summary lists before pointing at ``status BATCH --errors``."""

UI_URL_VARIABLE: Final = "TEMPORAL_UI_URL"
"""Where the Web UI is, when it is not at the dev server's default (the gRPC port + 1000)."""

_ENTITY_TITLES: Final = {
    EntityType.LIKED_SONG: "Liked songs",
    EntityType.PLAYLIST_ITEM: "Playlist items",
    EntityType.SAVED_ALBUM: "Saved albums",
    EntityType.FOLLOWED_ARTIST: "Followed artists",
}

BatchArgument = Annotated[
    str,
    typer.Argument(help="A batch ID, as `enforce` or `batches` prints it (enforce/ACCOUNT/PLAN)."),
]
StatusFormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", case_sensitive=False, help="table, or json (csv prints as json)."),
]
Handle = WorkflowHandle[EnforcementWorkflow, EnforcementSummary]


# enforce ---------------------------------------------------------------------------


def enforce(
    plan_id: Annotated[
        str | None, typer.Argument(help="The plan to carry out, as `plan` or `plans` prints it.")
    ] = None,
    plan_now: Annotated[
        bool,
        typer.Option("--plan-now", help="Plan first (as `starter.py plan` does), then enforce."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Start without asking (needed without a terminal).")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the batch until it ends, then summarise.")
    ] = False,
    max_in_flight: Annotated[
        int,
        typer.Option(
            "--max-in-flight",
            callback=whole_number_from(1, 32),
            help="Spotify calls running at once for this batch.",
        ),
    ] = 4,
    atomic: Annotated[
        bool,
        typer.Option(
            "--atomic",
            help="All or nothing: if any item fails, or the batch is cancelled, roll back "
            "everything it removed.",
        ),
    ] = False,
    examples: ExamplesOption = 5,
    account: AccountOption = None,
) -> None:
    """Carry out a plan: remove what its dry run lists, as one durable batch.

    Shows the dry run and asks before starting, unless --yes. Enforcing a plan that
    was enforced before changes nothing and shows that batch's result.
    """
    if (plan_id is None) == (not plan_now):
        fail("name a plan ID or give --plan-now (exactly one of the two)")
    if not yes and not sys.stdin.isatty():
        fail("no terminal to ask for confirmation: add --yes to start without asking")
    run(_enforce(plan_id, yes=yes, watch=watch, max_in_flight=max_in_flight,
                 atomic=atomic, examples=examples, account=account))  # fmt: skip


async def _enforce(
    plan_id: str | None,
    *,
    yes: bool,
    watch: bool,
    max_in_flight: int,
    atomic: bool,
    examples: int,
    account: str | None,
) -> None:
    async with account_session(account) as session:
        if plan_id is None:
            if not await session.ledger.blocklist(session.account_id):
                fail("the blocklist is empty: add artists with `starter.py blocklist add` first")
            plan_id = (await _run_planning(session, PlanOptions())).plan_id
            temporal = await connect_temporal()
        else:
            record = await session.ledger.plan_record(plan_id)
            if record.account_id != session.account_id:
                fail(
                    f"plan {plan_id!r} belongs to account {record.account_id!r}, not "
                    f"{session.account_id!r}: name that account with --account"
                )
            # Before the person is asked anything: an unreachable server fails here.
            temporal = await connect_temporal()
        plan = await session.ledger.load_plan(plan_id)
        typer.echo(render_plan(plan, "table", examples=examples, color=sys.stdout.isatty()))
        await start_enforcement(
            temporal,
            session,
            plan,
            confirmed=yes,
            watch=watch,
            max_in_flight=max_in_flight,
            atomic=atomic,
        )


async def start_enforcement(
    temporal: Client,
    session: AccountSession,
    plan: Plan,
    *,
    confirmed: bool,
    watch: bool,
    max_in_flight: int,
    atomic: bool = False,
) -> EnforcementSummary | None:
    """Starts (or joins) the batch of ``plan`` after the person agreed; with ``watch``,
    follows it to the end and returns its summary."""
    changes = sum(plan.counts.actions.values())
    if changes == 0:
        typer.echo("Nothing to enforce: the library already obeys the blocklist.")
        return None
    if not confirmed and not typer.confirm("Enforce this plan?", default=False):
        typer.echo("Nothing was started.", err=True)
        return None
    batch_id = enforcement_workflow_id(session.account_label, plan.id)
    try:
        handle = await temporal.start_workflow(
            EnforcementWorkflow.run,
            EnforcementRequest(
                account_id=session.account_id,
                plan_id=plan.id,
                account_label=session.account_label,
                max_in_flight=max_in_flight,
                atomic=atomic,
            ),
            id=batch_id,
            task_queue=configured_task_queue(),
            # Running: join it. Ended: refuse, so that the earlier result is shown instead.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=(
                f"Enforce plan {plan.id} for account {session.account_id}: {changes} changes"
            ),
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ENFORCEMENT_ACCOUNT, session.account_label),
                    SearchAttributePair(ENFORCEMENT_STATUS, BatchStatus.PENDING.value),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        typer.echo(f"Plan {plan.id} was already enforced as batch {batch_id}; its result:")
        summary = await _ended_summary(
            temporal.get_workflow_handle_for(EnforcementWorkflow.run, batch_id), session.ledger
        )
        print_summary(summary)
        return summary
    typer.echo(f"Batch {batch_id} is running.")
    typer.echo(f"Web UI: {web_ui_url(temporal, batch_id)}")
    if not watch:
        typer.echo(f"Follow it with: starter.py status {batch_id} --watch")
        return None
    summary = await watch_batch(handle)
    print_summary(summary)
    return summary


# status ------------------------------------------------------------------------------


def status(
    batch_id: BatchArgument,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow a running batch until it ends.")
    ] = False,
    errors: Annotated[
        bool, typer.Option("--errors", help="List every item that failed or was skipped.")
    ] = False,
    output: StatusFormatOption = OutputFormat.TABLE,
) -> None:
    """Show a batch: its progress while it runs, its summary once it has ended."""
    run(_status(batch_id, watch=watch, errors=errors, output=output))


async def _status(batch_id: str, *, watch: bool, errors: bool, output: OutputFormat) -> None:
    temporal = await connect_temporal()
    async with open_ledger(Settings()) as ledger:
        handle = temporal.get_workflow_handle_for(EnforcementWorkflow.run, batch_id)
        description = await _describe(handle)
        if description is not None and description.workflow_type == RollbackWorkflow.__name__:
            # Imported here: the rollback commands build on this module.
            from commands.rollback import show_rollback

            running = description.status == WorkflowExecutionStatus.RUNNING
            await show_rollback(temporal, batch_id, running=running, watch=watch, output=output)
            return
        if description is None:
            # Temporal may have dropped a long-closed run (retention); the ledger keeps it.
            summary = await _ledger_summary(ledger, batch_id)
        elif description.status == WorkflowExecutionStatus.RUNNING and not watch:
            progress = await handle.query(EnforcementWorkflow.progress)
            if output is OutputFormat.TABLE:
                print_progress(progress)
            else:
                typer.echo(_as_json({"state": "running", "progress": progress}))
            return
        elif description.status == WorkflowExecutionStatus.RUNNING:
            summary = await watch_batch(handle, quiet=output is not OutputFormat.TABLE)
        else:
            summary = await _ended_summary(handle, ledger)
        if output is OutputFormat.TABLE:
            print_summary(summary)
        else:
            typer.echo(_as_json({"state": "ended", "summary": summary}))
        if errors:
            await _print_all_errors(ledger, batch_id, output)


async def _describe(handle: Handle) -> WorkflowExecutionDescription | None:
    try:
        return await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise _temporal_error(error) from None


async def _ended_summary(handle: Handle, ledger: Ledger) -> EnforcementSummary:
    """The workflow's result; the ledger's record when the run did not return one."""
    try:
        return await handle.result()
    except WorkflowFailureError as error:
        typer.echo(f"batch {handle.id} failed: {_root_cause(error)}", err=True)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise _temporal_error(error) from None
    return await _ledger_summary(ledger, handle.id)


async def _ledger_summary(ledger: Ledger, batch_id: str) -> EnforcementSummary:
    try:
        record = await ledger.batch(batch_id)
    except UnknownBatch:
        fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
    if record.summary is not None:
        return EnforcementSummary.model_validate(record.summary)
    # A run that ended without writing its summary (terminated, say): what the items say.
    layout = await ledger.chunk_layout(batch_id)
    errors, in_all = await ledger.item_errors(batch_id, limit=ERRORS_SHOWN)
    duration = (
        (record.finished_at or record.updated_at) - record.started_at
        if record.started_at is not None
        else timedelta(0)
    )
    return EnforcementSummary(
        batch_id=batch_id,
        plan_id=record.plan_id,
        account_id=record.account_id,
        status=BatchStatus(record.status.value),
        totals=layout.totals if layout is not None else {},
        tallies=await ledger.tallies(batch_id),
        api_calls=0,
        rate_limit_waits=0,
        rate_limit_wait_seconds=0.0,
        duration_seconds=duration.total_seconds(),
        errors=tuple(errors),
        errors_omitted=max(0, in_all - len(errors)),
    )


async def _print_all_errors(ledger: Ledger, batch_id: str, output: OutputFormat) -> None:
    errors, _ = await ledger.item_errors(batch_id, limit=1_000_000)
    emit(
        [
            {"key": e.key, "name": e.name, "error": e.error, "attempts": str(e.attempts)}
            for e in errors
        ],
        [
            Column("key", "Item"),
            Column("name", "Name"),
            Column("error", "Why"),
            Column("attempts", "Attempts"),
        ],
        output,
        title=f"Items of {batch_id} that failed or were skipped",
        empty="No item failed or was skipped.",
    )


# cancel, pause, resume -------------------------------------------------------------------


def cancel(batch_id: BatchArgument) -> None:
    """Stop a batch: no new Spotify calls start, running ones finish, the rest is skipped."""
    run(_signal(batch_id, "cancel", lambda h: h.signal(EnforcementWorkflow.cancel)))


def pause(batch_id: BatchArgument) -> None:
    """Hold a batch: running Spotify calls finish, no new ones start until `resume`."""
    run(_signal(batch_id, "pause", lambda h: h.signal(EnforcementWorkflow.pause)))


def resume(batch_id: BatchArgument) -> None:
    """Carry on with a paused batch, or one waiting for a new login after `login`."""
    run(_signal(batch_id, "resume", lambda h: h.signal(EnforcementWorkflow.resume)))


_SIGNALLED: Final = {
    "cancel": "asked to cancel: running Spotify calls finish, nothing new starts",
    "pause": "asked to pause: running Spotify calls finish, nothing new starts until resume",
    "resume": "asked to resume",
}


async def _signal(batch_id: str, name: str, send: Callable[[Handle], Awaitable[None]]) -> None:
    temporal = await connect_temporal()
    handle = temporal.get_workflow_handle_for(EnforcementWorkflow.run, batch_id)
    description = await _describe(handle)
    if description is None:
        fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
    if description.status != WorkflowExecutionStatus.RUNNING:
        ended = description.status.name.lower() if description.status else "ended"
        fail(f"batch {batch_id!r} has ended ({ended}): there is nothing to {name}")
    try:
        await send(handle)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            fail(f"batch {batch_id!r} ended meanwhile: there is nothing to {name}")
        raise _temporal_error(error) from None
    typer.echo(f"Batch {batch_id} {_SIGNALLED[name]}.")


# batches ---------------------------------------------------------------------------------


def batches(
    status_filter: Annotated[
        BatchStatus | None,
        typer.Option("--status", case_sensitive=False, help="Only batches in this status."),
    ] = None,
    output: FormatOption = OutputFormat.TABLE,
    account: AccountOption = None,
) -> None:
    """List an account's enforcement batches, newest first."""
    run(_batches(status_filter, output, account))


async def _batches(
    status_filter: BatchStatus | None, output: OutputFormat, account: str | None
) -> None:
    async with account_session(account) as session:
        temporal = await connect_temporal()
        query = " AND ".join(
            [
                f"WorkflowType = '{EnforcementWorkflow.__name__}'",
                f"{ENFORCEMENT_ACCOUNT.name} = {_quoted(session.account_label)}",
                *(
                    [f"{ENFORCEMENT_STATUS.name} = '{status_filter.value}'"]
                    if status_filter is not None
                    else []
                ),
            ]
        )
        rows = []
        try:
            executions = [execution async for execution in temporal.list_workflows(query)]
        except RPCError as error:
            raise _temporal_error(error) from None
        executions.sort(key=lambda e: e.start_time, reverse=True)
        for execution in executions:
            rows.append(await _batch_row(session.ledger, execution.id, execution))
    emit(
        rows,
        [
            Column("batch_id", "Batch"),
            Column("plan_id", "Plan"),
            Column("status", "Status"),
            Column("started_at", "Started"),
            Column("done", "Done"),
            Column("total", "Total"),
        ],
        output,
        title=f"Enforcement batches of {session.account_id}",
        empty="No batches: `starter.py enforce PLAN_ID` starts one.",
    )


async def _batch_row(ledger: Ledger, batch_id: str, execution: Any) -> dict[str, Any]:
    status = execution.typed_search_attributes.get(ENFORCEMENT_STATUS) or BatchStatus.PENDING
    row: dict[str, Any] = {
        "batch_id": batch_id,
        "plan_id": batch_id.rsplit("/", 1)[-1],
        "status": str(status),
        "started_at": execution.start_time,
        "done": "",
        "total": "",
    }
    try:
        record = await ledger.batch(batch_id)
    except UnknownBatch:
        return row  # started, but the workflow has not written it to the ledger yet
    counts = await ledger.item_counts(batch_id)
    row["plan_id"] = record.plan_id
    row["started_at"] = record.started_at or execution.start_time
    row["done"] = str(sum(tally.done for tally in (await ledger.tallies(batch_id)).values()))
    row["total"] = str(sum(counts.values()))
    if execution.status != WorkflowExecutionStatus.RUNNING:
        # The ledger has the last word on a batch that ended, whatever the attribute says.
        row["status"] = record.status.value
    return row


def _quoted(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a Temporal list query (quote or backslash)")
    return f"'{value}'"


# watching ------------------------------------------------------------------------------


async def watch_batch(handle: Handle, *, quiet: bool = False) -> EnforcementSummary:
    """Shows the ``progress`` query every second until the batch ends; its summary."""
    result = asyncio.ensure_future(handle.result())
    if quiet:
        try:
            return await result
        except WorkflowFailureError as error:
            fail(f"batch {handle.id} failed: {_root_cause(error)}")
    console = Console(stderr=True)
    try:
        return await watch_progress(
            result,
            lambda: _progress(handle),
            console=console,
            starting="starting",
            title=lambda progress: progress.status.value,
            details=_progress_lines,
        )
    except WorkflowFailureError as error:
        fail(f"batch {handle.id} failed: {_root_cause(error)}")
    except asyncio.CancelledError:  # Ctrl-C
        console.print(f"Stopped watching; the batch carries on: starter.py status {handle.id}")
        raise
    finally:
        result.cancel()


async def watch_progress(
    result: asyncio.Future[R],
    poll: Callable[[], Awaitable[P | None]],
    *,
    console: Console,
    starting: str,
    title: Callable[[P], str],
    details: Callable[[P], RenderableType],
) -> R:
    """Shows a bar of the items done, polling the progress every second, until ``result``
    is done; its result (or what it raised)."""
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
            progress = await poll()
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


async def _progress(handle: Handle) -> EnforcementProgress | None:
    try:
        return await handle.query(EnforcementWorkflow.progress)
    except RPCError:
        return None  # between runs (continue-as-new) or just ended: the next poll tells


# printing ------------------------------------------------------------------------------


def print_progress(progress: EnforcementProgress) -> None:
    console = Console()
    console.print(f"Batch {progress.batch_id} (plan {progress.plan_id}): {progress.status.value}")
    console.print(_tally_table(progress.totals, progress.tallies))
    console.print(_progress_lines(progress))


def _progress_lines(progress: EnforcementProgress) -> Table:
    lines = Table.grid(padding=(0, 2))
    lines.add_row("Chunks", f"{progress.chunks_done} of {progress.chunks_total}")
    lines.add_row("API calls", str(progress.api_calls))
    lines.add_row(
        "Rate-limit waits",
        f"{progress.rate_limit_waits} ({_duration(progress.rate_limit_wait_seconds)})",
    )
    if progress.eta_seconds is not None:
        lines.add_row("Time left", f"about {_duration(progress.eta_seconds)}")
    return lines


def print_summary(summary: EnforcementSummary) -> None:
    """A batch's result: counts per entity type, calls, waits, fallbacks and errors."""
    console = Console()
    console.print(
        f"Batch {summary.batch_id} (plan {summary.plan_id}, account {summary.account_id}): "
        f"{summary.status.value}"
    )
    console.print(_tally_table(summary.totals, summary.tallies))
    lines = Table.grid(padding=(0, 2))
    lines.add_row("API calls", str(summary.api_calls))
    lines.add_row(
        "Rate-limit waits",
        f"{summary.rate_limit_waits} ({_duration(summary.rate_limit_wait_seconds)} in all)",
    )
    lines.add_row("Duration", _duration(summary.duration_seconds))
    lines.add_row(
        "Legacy endpoints",
        (
            "used for "
            + ", ".join(summary.legacy_operations)
            + " (Spotify refused the current ones)"
            if summary.legacy_operations
            else "none"
        ),
    )
    console.print(lines)
    if summary.errors:
        errors = Table(title="Errors", title_justify="left")
        for header in ("Item", "Why", "Attempts"):
            errors.add_column(header, overflow="fold")
        for error in summary.errors[:ERRORS_SHOWN]:
            errors.add_row(error.name, error.error, str(error.attempts))
        console.print(errors)
        more = summary.errors_omitted + max(0, len(summary.errors) - ERRORS_SHOWN)
        if more:
            console.print(f"... and {more} more.")
        console.print(f"Every one: starter.py status {summary.batch_id} --errors")


def _tally_table(
    totals: Mapping[EntityType, int], tallies: Mapping[EntityType, ItemTally]
) -> Table:
    table = Table(title_justify="left")
    for header in ("What", "Planned", "Completed", "Failed", "Skipped"):
        table.add_column(header, justify="left" if header == "What" else "right")
    for entity in EntityType:
        if entity not in totals and entity not in tallies:
            continue
        tally = tallies.get(entity, ItemTally())
        table.add_row(
            _ENTITY_TITLES[entity],
            str(totals.get(entity, 0)),
            str(tally.completed),
            str(tally.failed),
            str(tally.skipped),
        )
    return table


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _as_json(document: Mapping[str, Any]) -> str:
    return json.dumps(
        {key: value.model_dump(mode="json") if hasattr(value, "model_dump") else value
         for key, value in document.items()},
        indent=2,
        ensure_ascii=False,
    )  # fmt: skip


def web_ui_url(temporal: Client, workflow_id: str) -> str:
    """The page of ``workflow_id`` in the Web UI."""
    namespace = quote(temporal.namespace, safe="")
    return f"{web_ui_base(temporal)}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


def web_ui_base(temporal: Client) -> str:
    """The Web UI: ``TEMPORAL_UI_URL`` if set, otherwise where ``temporal server start-dev``
    puts it, on the server's host at its gRPC port + 1000 (7233 -> 8233)."""
    configured = os.environ.get(UI_URL_VARIABLE, "").strip().rstrip("/")
    if configured:
        return configured
    target = temporal.service_client.config.target_host
    host, _, port = target.rpartition(":")
    try:
        return f"http://{host or 'localhost'}:{int(port) + 1000}"
    except ValueError:
        return f"http://{target}:8233"


def _temporal_error(error: RPCError) -> ConnectionError:
    address = ClientConfig.load_client_connect_config().get("target_host", "localhost:7233")
    return ConnectionError(f"the Temporal server at {address} refused the request: {error}")
