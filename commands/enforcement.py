"""`enforce`, `status`, `cancel`, `pause`, `resume` and `batches`: carrying out a plan.

A batch is one ``EnforcementWorkflow`` whose workflow ID, ``enforce/{account}/{plan}``,
is also the batch's ID in the ledger: starting the same plan twice joins the running
batch or shows the finished one's result, and never writes to Spotify a second time.

Invariants: ``status`` and ``batches`` show a batch in the status the ledger records
(``commands._batches.standing``), so they agree with each other and with the ledger,
rolled back or not; ``pause``, ``resume`` and ``cancel`` are the workflow's updates, and
work on a rollback (``rollback/...``) as on an enforcement.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any, Final

import typer
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.keep import SCHEDULE_PREFIX
from commands._batches import (
    BatchArgument,
    Control,
    Standing,
    as_json,
    check_owner,
    control,
    duration,
    emit_status_csv,
    follow,
    poll,
    print_skipped,
    progress_lines,
    standing,
    tally_table,
    undone_document,
    undone_words,
)
from commands._inputs import whole_number_from
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
from commands.planning import (
    ExamplesOption,
    FullScanOption,
    dry_run_before_enforcing,
    run_planning,
)
from commands.rollback import show_rollback
from enforcer.ledger import Ledger, UnknownBatch
from enforcer.markdown import enforcement_details, enforcement_summary
from enforcer.models import (
    BatchKind,
    BatchStatus,
    EnforcementProgress,
    EnforcementRequest,
    EnforcementSummary,
    ItemStatus,
    ItemTally,
    Plan,
    PlanOptions,
)
from workflows.connection import configured_task_queue, connect_temporal
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id
from workflows.rollback import RollbackWorkflow
from workflows.search_attributes import (
    ENFORCEMENT_ACCOUNT,
    ENFORCEMENT_STATUS,
    new_batch_attributes,
)

ERRORS_SHOWN: Final = 5
"""Item errors a summary lists before pointing at ``status BATCH --errors``."""

StatusFormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="table; json (one document); csv: one row per kind of item (liked songs, "
        "playlist items...) with the batch ID, state and status on every row, and its "
        "planned, completed, failed and skipped counts. With --errors, csv prints the "
        "failed and skipped items instead.",
    ),
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
    full: FullScanOption = False,
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
    was enforced before changes nothing and shows that batch's result. Exits 3 when the
    batch it waited for (--watch) or showed ended failed or cancelled.
    """
    if (plan_id is None) == (not plan_now):
        fail("name a plan ID or give --plan-now (exactly one of the two)")
    if full and not plan_now:
        fail("--full is how --plan-now reads the library: give it with --plan-now only")
    if not yes and not sys.stdin.isatty():
        fail("no terminal to ask for confirmation: add --yes to start without asking")
    run(_enforce(plan_id, full=full, yes=yes, watch=watch, max_in_flight=max_in_flight,
                 atomic=atomic, examples=examples, account=account))  # fmt: skip


async def _enforce(
    plan_id: str | None,
    *,
    full: bool,
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
            plan_id = (await run_planning(session, PlanOptions(), full=full)).plan_id
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
        typer.echo(dry_run_before_enforcing(plan, examples))
        summary = await start_enforcement(
            temporal,
            session,
            plan,
            confirmed=yes,
            watch=watch,
            max_in_flight=max_in_flight,
            atomic=atomic,
        )
    if summary is not None:
        exit_for_batch(summary.status)


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
            static_summary=enforcement_summary(session.account_id, plan.counts),
            static_details=enforcement_details(
                namespace=temporal.namespace,
                batch_id=batch_id,
                plan_id=plan.id,
                account_id=session.account_id,
                options=plan.options,
                counts=plan.counts,
                blocklist=plan.blocklist,
            ),
            search_attributes=new_batch_attributes(session.account_label),
        )
    except WorkflowAlreadyStartedError:
        typer.echo(f"Plan {plan.id} was already enforced as batch {batch_id}; its result:")
        summary = await _ended_summary(
            temporal.get_workflow_handle_for(EnforcementWorkflow.run, batch_id), session.ledger
        )
        found = await standing(session.ledger, batch_id)
        summary = as_recorded(summary, found)
        print_summary(summary, found)
        return summary
    typer.echo(f"Batch {batch_id} is running.")
    typer.echo(f"Web UI: {web_ui_url(temporal, batch_id)}")
    if not watch:
        typer.echo(f"Follow it with: starter.py status {batch_id} --watch")
        return None
    summary = await watch_batch(handle, session.ledger)
    found = await standing(session.ledger, batch_id)
    summary = as_recorded(summary, found)
    print_summary(summary, found)
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
    account: AccountOption = None,
) -> None:
    """Show a batch: its progress while it runs, its summary once it has ended, and
    what rollbacks put back of it.

    Exits 3 when the batch has ended (or, with --watch, ends) failed or cancelled.
    """
    run(_status(batch_id, watch=watch, errors=errors, output=output, account=account))


async def _status(
    batch_id: str, *, watch: bool, errors: bool, output: OutputFormat, account: str | None
) -> None:
    async with account_session(account) as session:
        ledger = session.ledger
        temporal = await connect_temporal()
        handle = temporal.get_workflow_handle_for(EnforcementWorkflow.run, batch_id)
        description = await describe(handle)
        await check_owner(session, batch_id, description)
        found = await standing(ledger, batch_id, description.status if description else None)
        if (found is not None and found.kind is BatchKind.ROLLBACK) or (
            description is not None and description.workflow_type == RollbackWorkflow.__name__
        ):
            await show_rollback(temporal, ledger, batch_id, description, watch=watch, output=output)
            return
        if description is None and found is None:
            fail(f"unknown batch {batch_id!r}: `starter.py batches` lists the batches")
        running = description is not None and description.status == WorkflowExecutionStatus.RUNNING
        if running and not watch:
            progress = await handle.query(EnforcementWorkflow.progress)
            state = found.status if found is not None else progress.status
            scheduled = scheduled_by(description.parent_id if description is not None else None)
            if output is OutputFormat.TABLE:
                print_progress(progress, state)
                if scheduled:
                    typer.echo(f"Started by the scheduled run {scheduled}.")
            elif output is OutputFormat.CSV and not errors:
                emit_status_csv(batch_id, running=True, status=state,
                                totals=progress.totals, tallies=progress.tallies)  # fmt: skip
            elif output is OutputFormat.JSON:
                typer.echo(as_json({"state": "running", "status": state.value,
                                     "scheduled_by": scheduled,
                                     **undone_document(found), "progress": progress}))  # fmt: skip
            if errors:
                await _print_all_errors(ledger, batch_id, output)
            return
        if description is None:
            # Temporal may have dropped a long-closed run (retention); the ledger keeps it.
            summary = await _ledger_summary(ledger, batch_id)
        elif running:
            summary = await watch_batch(handle, ledger, quiet=output is not OutputFormat.TABLE)
            found = await standing(ledger, batch_id)
        else:
            summary = await _ended_summary(handle, ledger)
        summary = as_recorded(summary, found)
        scheduled = scheduled_by(description.parent_id if description is not None else None)
        if output is OutputFormat.TABLE:
            print_summary(summary, found)
            if scheduled:
                typer.echo(f"Started by the scheduled run {scheduled}.")
        elif output is OutputFormat.CSV and not errors:
            emit_status_csv(batch_id, running=False, status=summary.status,
                            totals=summary.totals, tallies=summary.tallies)  # fmt: skip
        elif output is OutputFormat.JSON:
            typer.echo(as_json({"state": "ended", "status": summary.status.value,
                                 "scheduled_by": scheduled,
                                 **undone_document(found), "summary": summary}))  # fmt: skip
        if errors:
            await _print_all_errors(ledger, batch_id, output)
    exit_for_batch(summary.status)


def as_recorded(summary: EnforcementSummary, found: Standing | None) -> EnforcementSummary:
    """The summary with the ledger's status of the batch: a rollback run after the batch
    ended has the last word (the workflow's own result cannot change any more)."""
    if found is None:
        return summary
    return summary.model_copy(
        update={
            "status": found.status,
            "rolled_back_by": summary.rolled_back_by or found.last_rollback,
        }
    )


async def _ended_summary(handle: Handle, ledger: Ledger) -> EnforcementSummary:
    """The workflow's result; the ledger's record when the run did not return one (it
    was cancelled, or failed)."""
    try:
        return await handle.result()
    except WorkflowFailureError as error:
        if not ended_canceled(error):
            typer.echo(f"batch {handle.id} failed: {root_cause(error)}", err=True)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise temporal_error(error) from None
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
    errors, in_all = await ledger.item_errors(
        batch_id, limit=ERRORS_SHOWN, status=ItemStatus.FAILED
    )
    skipped, reasons = await ledger.skip_reasons(batch_id, limit=ERRORS_SHOWN)
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
        skipped=tuple(skipped),
        skipped_reasons_omitted=reasons - len(skipped),
    )


async def _print_all_errors(ledger: Ledger, batch_id: str, output: OutputFormat) -> None:
    rows = []
    for status in (ItemStatus.FAILED, ItemStatus.SKIPPED):
        items, _ = await ledger.item_errors(batch_id, limit=1_000_000, status=status)
        rows += [
            {"key": e.key, "name": e.name, "status": status.value, "error": e.error,
             "attempts": str(e.attempts)}
            for e in items
        ]  # fmt: skip
    emit(
        rows,
        [
            Column("key", "Item", whole=True),
            Column("name", "Name"),
            Column("status", "Status"),
            Column("error", "Why"),
            Column("attempts", "Attempts"),
        ],
        output,
        title=f"Items of {batch_id} that failed or were skipped",
        empty="No item failed or was skipped.",
    )


# cancel, pause, resume -------------------------------------------------------------------


def cancel(batch_id: BatchArgument, account: AccountOption = None) -> None:
    """Stop a batch (or a rollback): no new Spotify calls start, running ones finish, the
    rest is skipped."""
    run(_control(batch_id, "cancel", account))


def pause(batch_id: BatchArgument, account: AccountOption = None) -> None:
    """Hold a batch (or a rollback): running Spotify calls finish, no new ones start
    until `resume`."""
    run(_control(batch_id, "pause", account))


def resume(batch_id: BatchArgument, account: AccountOption = None) -> None:
    """Carry on with a paused batch (or rollback), or one waiting for a new login after
    `login`."""
    run(_control(batch_id, "resume", account))


async def _control(batch_id: str, name: Control, account: str | None) -> None:
    async with account_session(account) as session:
        temporal = await connect_temporal()
        await check_owner(session, batch_id, await describe(temporal.get_workflow_handle(batch_id)))
        await control(temporal, session.ledger, batch_id, name)


# batches ---------------------------------------------------------------------------------


def batches(
    status_filter: Annotated[
        BatchStatus | None,
        typer.Option("--status", case_sensitive=False, help="Only batches in this status."),
    ] = None,
    output: FormatOption = OutputFormat.TABLE,
    account: AccountOption = None,
) -> None:
    """List an account's enforcement batches, newest first, each in the status the ledger
    records (rolled back, partly rolled back...), with how many items are back."""
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
            ]
        )
        try:
            executions = [execution async for execution in temporal.list_workflows(query)]
        except RPCError as error:
            raise temporal_error(error) from None
        executions.sort(key=lambda e: e.start_time, reverse=True)
        rows = [await _batch_row(session.ledger, execution) for execution in executions]
    if status_filter is not None:
        # The ledger's status, not the search attribute: a batch a rollback undid after it
        # ended is rolled back, whatever its closed workflow's attribute says.
        rows = [row for row in rows if row["status"] == status_filter.value]
    emit(
        rows,
        [
            Column("batch_id", "Batch", whole=True),
            Column("plan_id", "Plan", whole=True),
            Column("status", "Status"),
            Column("started_at", "Started"),
            Column("removed", "Removed"),
            Column("failed", "Failed"),
            Column("skipped", "Skipped"),
            Column("total", "Total"),
            Column("back", "Back"),
            Column("rolled_back_by", "Rolled back by", whole=True),
            Column("scheduled_by", "Scheduled run", whole=True),
        ],
        output,
        title=f"Enforcement batches of {session.account_id}",
        empty="No batches: `starter.py enforce PLAN_ID` starts one.",
    )


async def _batch_row(ledger: Ledger, execution: WorkflowExecution) -> dict[str, Any]:
    batch_id = execution.id
    attribute = execution.typed_search_attributes.get(ENFORCEMENT_STATUS)
    row: dict[str, Any] = {
        "batch_id": batch_id,
        "plan_id": batch_id.rsplit("/", 1)[-1],
        "status": attribute or BatchStatus.PENDING.value,
        "started_at": execution.start_time,
        "removed": "",
        "failed": "",
        "skipped": "",
        "total": "",
        "back": "",
        "rolled_back_by": "",
        "scheduled_by": scheduled_by(execution.parent_id),
    }
    found = await standing(ledger, batch_id, execution.status)
    if found is None:
        return row  # started, but the workflow has not written it to the ledger yet
    record = await ledger.batch(batch_id)
    counts = await ledger.item_counts(batch_id)
    row["plan_id"] = record.plan_id
    row["started_at"] = record.started_at or execution.start_time
    tally = sum((await ledger.tallies(batch_id)).values(), start=ItemTally())
    row["removed"], row["failed"], row["skipped"] = (
        str(tally.completed), str(tally.failed), str(tally.skipped)
    )  # fmt: skip
    row["total"] = str(sum(counts.values()))
    row["status"] = found.status.value
    if found.items_back is not None:
        row["back"] = str(found.items_back.back)
        row["rolled_back_by"] = found.last_rollback
    return row


def scheduled_by(parent_id: str | None) -> str:
    """The scheduled run (``keep/{account}-{time}``) that started a batch; "" for a
    batch a person started. A scheduled batch is an ordinary one, its parent the run."""
    if parent_id is not None and parent_id.startswith(SCHEDULE_PREFIX):
        return parent_id
    return ""


def _quoted(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a Temporal list query (quote or backslash)")
    return f"'{value}'"


# watching ------------------------------------------------------------------------------


async def watch_batch(handle: Handle, ledger: Ledger, *, quiet: bool = False) -> EnforcementSummary:
    """Shows the ``progress`` query every second until the batch ends; its summary (the
    ledger's, for a batch that ended cancelled)."""
    try:
        if quiet:
            return await handle.result()
        return await follow(
            handle.result(),
            lambda: poll(handle.query(EnforcementWorkflow.progress)),
            starting="starting",
            title=lambda progress: progress.status.value,
            details=progress_lines,
            carries_on=f"the batch carries on: starter.py status {handle.id}",
        )
    except WorkflowFailureError as error:
        if ended_canceled(error):
            return await _ledger_summary(ledger, handle.id)
        batch_failed(f"batch {handle.id} failed: {root_cause(error)}")


# printing ------------------------------------------------------------------------------


def print_progress(progress: EnforcementProgress, state: BatchStatus) -> None:
    """A running batch: ``state`` (the ledger's), then the workflow's live counts."""
    console = terminal()
    console.print(f"Batch {progress.batch_id} (plan {progress.plan_id}): {state.value}")
    console.print(tally_table(progress.totals, progress.tallies))
    console.print(progress_lines(progress))


def print_summary(summary: EnforcementSummary, found: Standing | None = None) -> None:
    """A batch's result: counts per entity type, calls, waits, fallbacks, errors, and
    what rollbacks put back of it."""
    console = terminal()
    console.print(
        f"Batch {summary.batch_id} (plan {summary.plan_id}, account {summary.account_id}): "
        f"{summary.status.value}"
    )
    console.print(tally_table(summary.totals, summary.tallies))
    lines = Facts()
    undone = undone_words(found) if found is not None else None
    if undone is not None:
        lines.add_row("Rolled back", undone)
    lines.add_row("API calls", str(summary.api_calls))
    lines.add_row(
        "Rate-limit waits",
        f"{summary.rate_limit_waits} ({duration(summary.rate_limit_wait_seconds)} in all)",
    )
    lines.add_row("Duration", duration(summary.duration_seconds))
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
    print_skipped(console, summary.skipped, summary.skipped_reasons_omitted)
    if summary.errors:
        print_rows(
            console,
            "Errors",
            [Column("name", "Item"), Column("error", "Why"), Column("attempts", "Attempts")],
            [[e.name, e.error, str(e.attempts)] for e in summary.errors[:ERRORS_SHOWN]],
        )
        more = summary.errors_omitted + max(0, len(summary.errors) - ERRORS_SHOWN)
        if more:
            console.print(f"... and {more} more.")
        console.print(f"Every one: starter.py status {summary.batch_id} --errors")
