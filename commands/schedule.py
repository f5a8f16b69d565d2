"""``schedule``: keep an account's library obeying its blocklist, on a Temporal Schedule.

One schedule per account, ID ``keep/{account}``, whose every run is a
``KeepEnforcedWorkflow``: plan, and enforce what is new as an ordinary batch. The
schedule's policy is Temporal's: overlapping runs are skipped (a run still going when
the next is due is enough), and after the server was down only the runs due within one
interval are caught up, so a long outage gives one catch-up run, not a burst.

``blocklist_changed`` is what ``blocklist add`` and ``blocklist remove`` call: it
triggers the account's schedule at once (unless it is paused). The debounce is the
run's: it waits until the blocklist has stayed the same for ``--settle`` seconds, and
triggers that come while a run is going are absorbed by the overlap policy (skip); the
run plans again when the blocklist changed while it ran. So ten additions in a row make
one run.

Invariants: nothing here changes the ledger; a schedule that does not exist is an
error naming the account and the way to make one; no command waits for a run.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Any, Final

import typer
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from activities.keep import SCHEDULE_PREFIX, keep_schedule_id
from commands._help import Command, Group
from commands._inputs import whole_number_from
from commands._output import Column, Facts, FormatOption, OutputFormat, emit, terminal
from commands._runtime import (
    EXIT_CODES_EPILOG,
    AccountOption,
    AccountSession,
    InputError,
    account_session,
    fail,
    run,
)
from commands._temporal import root_cause, temporal_error, web_ui_base
from commands.planning import CollaborativeOption, PolicyOption
from enforcer.models import KeepRequest, KeepRunSummary, PlanOptions, Policy
from workflows.connection import TemporalUnreachable, configured_task_queue, connect_temporal
from workflows.keep import KeepEnforcedWorkflow, run_outcome
from workflows.search_attributes import ENFORCEMENT_ACCOUNT

schedule_app = typer.Typer(
    help="Keep your library obeying the blocklist: plan and enforce on a schedule.",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
)

SHORTEST_INTERVAL: Final = timedelta(seconds=1)
SHORTEST_CATCHUP: Final = timedelta(seconds=10)
"""Temporal's own floor for a catch-up window (a shorter one is raised to it)."""
SETTINGS_MEMO: Final = "keep"
"""The schedule's memo that holds what ``create`` was given (no account, no secret)."""
_UNITS: Final = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_DURATION: Final = re.compile(r"(?:(\d+)([smhd]))+")


def parse_every(given: str) -> timedelta:
    """``6h``, ``90m``, ``1h30m``, ``10s``, ``1d``: a duration of at least a second."""
    text = given.strip().lower()
    if not _DURATION.fullmatch(text):
        raise InputError(
            f"--every {given!r} is not a duration: a number and a unit (s, m, h, d), "
            "e.g. 6h, 90m or 1h30m"
        )
    every = timedelta(
        seconds=sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhd])", text))
    )
    if every < SHORTEST_INTERVAL:
        raise InputError(f"--every {given!r} is shorter than a second")
    return every


def _words(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


# create ------------------------------------------------------------------------------


@schedule_app.command("create", cls=Command, epilog=EXIT_CODES_EPILOG)
def create(
    every: Annotated[
        str, typer.Option("--every", help="How often: 6h, 90m, 1h30m, 1d (at least 1s).")
    ],
    policy: PolicyOption = Policy.FEATURED,
    collaborative: CollaborativeOption = False,
    settle: Annotated[
        int,
        typer.Option(
            "--settle",
            callback=whole_number_from(0, 600),
            help="Seconds the blocklist must stay unchanged before a run plans: changes "
            "made one after another are enforced by one run.",
        ),
    ] = 5,
    account: AccountOption = None,
) -> None:
    """Plan and enforce on a schedule: each run enforces what is new as an ordinary
    batch (a run with nothing to do leaves no batch), and a blocklist change runs it at once.
    """
    try:
        interval = parse_every(every)
    except InputError as error:
        fail(str(error))
    options = PlanOptions(policy=policy, include_collaborative=collaborative)
    run(_create(interval, options, settle, account))


async def _create(every: timedelta, options: PlanOptions, settle: int, account: str | None) -> None:
    async with account_session(account) as session:
        temporal = await connect_temporal()
        schedule_id = keep_schedule_id(session.account_label)
        request = KeepRequest(
            account_id=session.account_id,
            account_label=session.account_label,
            options=options,
            settle_seconds=settle,
        )
        try:
            await temporal.create_schedule(
                schedule_id,
                Schedule(
                    action=ScheduleActionStartWorkflow(
                        KeepEnforcedWorkflow.run,
                        request,
                        # Temporal adds the scheduled time: keep/{account}-{time}.
                        id=schedule_id,
                        task_queue=configured_task_queue(),
                        typed_search_attributes=TypedSearchAttributes(
                            [SearchAttributePair(ENFORCEMENT_ACCOUNT, session.account_label)]
                        ),
                        static_summary=f"Keep {session.account_label}'s library obeying "
                        "the blocklist",
                    ),
                    spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                    policy=SchedulePolicy(
                        overlap=ScheduleOverlapPolicy.SKIP,
                        # Runs missed while the server was down: only those due within
                        # one interval are made up, and skip allows one at a time.
                        catchup_window=max(every, SHORTEST_CATCHUP),
                    ),
                    state=ScheduleState(note="created by starter.py schedule create"),
                ),
                memo={
                    SETTINGS_MEMO: {
                        "policy": options.policy.value,
                        "collaborative": options.include_collaborative,
                        "settle_seconds": settle,
                    }
                },
            )
        except ScheduleAlreadyRunningError:
            fail(
                f"account {session.account_id!r} has a schedule already ({schedule_id}): "
                "`starter.py schedule show` shows it, `schedule delete` removes it"
            )
        except RPCError as error:
            raise temporal_error(error) from None
    typer.echo(f"Schedule {schedule_id}: every {_words(every)}, policy {options.policy.value}.")
    typer.echo(
        f"Each run plans and enforces what is new; `starter.py schedule show` tells what "
        f"each did. Web UI: {web_ui_base(temporal)}/namespaces/{temporal.namespace}/schedules"
    )


# show ----------------------------------------------------------------------------------


@schedule_app.command("show", cls=Command, epilog=EXIT_CODES_EPILOG)
def show(output: FormatOption = OutputFormat.TABLE, account: AccountOption = None) -> None:
    """The account's schedule: how often, paused or not, the next runs, and what each of
    the recent runs did (what it removed, by artist, or why nothing)."""
    run(_show(output, account))


async def _show(output: OutputFormat, account: str | None) -> None:
    async with account_session(account) as session:
        temporal = await connect_temporal()
        handle = _handle(temporal, session)
        description = await _described(handle, session)
        settings: dict[str, Any] = await description.memo_value(SETTINGS_MEMO, {})
        runs = [await _run_row(temporal, result.action) for result in
                description.info.recent_actions]  # fmt: skip
    intervals = description.schedule.spec.intervals
    facts: dict[str, Any] = {
        "schedule_id": handle.id,
        "account": session.account_id,
        "every": _words(intervals[0].every) if intervals else "",
        "policy": settings.get("policy", ""),
        "collaborative": settings.get("collaborative", False),
        "settle_seconds": settings.get("settle_seconds"),
        "paused": description.schedule.state.paused,
        "note": description.schedule.state.note or "",
        "runs": description.info.num_actions,
        "skipped_while_running": description.info.num_actions_skipped_overlap,
        "next_runs": [when.isoformat() for when in description.info.next_action_times[:3]],
    }
    if output is OutputFormat.JSON:
        typer.echo(json.dumps({**facts, "recent_runs": runs}, indent=2, default=str))
        return
    if output is OutputFormat.CSV:
        emit(runs, RUN_COLUMNS, output, title="", empty="")
        return
    lines = Facts()
    lines.add_row("Schedule", f"{handle.id} (account {session.account_id})")
    scope = ", collaborative playlists too" if facts["collaborative"] else ""
    lines.add_row("Every", f"{facts['every']}, policy {facts['policy']}{scope}")
    state = "paused" if facts["paused"] else "active"
    lines.add_row("State", f"{state}" + (f" ({facts['note']})" if facts["note"] else ""))
    lines.add_row("Runs", f"{facts['runs']} ({facts['skipped_while_running']} skipped: "
                  "one was running)")  # fmt: skip
    if not facts["paused"]:
        lines.add_row("Next", ", ".join(facts["next_runs"]) or "none")
    terminal().print(lines)
    emit(runs, RUN_COLUMNS, output, title="Recent runs", empty="No run yet.")


RUN_COLUMNS: Final = (
    Column("run_id", "Run", whole=True),
    Column("started_at", "Started"),
    Column("state", "State"),
    Column("outcome", "What it did"),
)


async def _run_row(temporal: Client, action: Any) -> dict[str, Any]:
    """One recent run: its workflow, and what it did (or that it runs, or why it failed)."""
    assert isinstance(action, ScheduleActionExecutionStartWorkflow)
    handle = temporal.get_workflow_handle_for(
        KeepEnforcedWorkflow.run,
        action.workflow_id,
        first_execution_run_id=action.first_execution_run_id,
    )
    row: dict[str, Any] = {"run_id": action.workflow_id, "started_at": None, "state": "",
                           "outcome": ""}  # fmt: skip
    try:
        described = await handle.describe()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise temporal_error(error) from None
        row["state"] = "gone"  # past Temporal's retention
        return row
    row["started_at"] = described.start_time
    status = described.status
    row["state"] = status.name.lower() if status is not None else ""
    if status == WorkflowExecutionStatus.COMPLETED:
        summary: KeepRunSummary = await handle.result()
        row["outcome"] = run_outcome(summary)
    elif status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result()
        except WorkflowFailureError as error:
            row["outcome"] = root_cause(error)
    return row


# list ----------------------------------------------------------------------------------


@schedule_app.command("list", cls=Command, epilog=EXIT_CODES_EPILOG)
def list_schedules(output: FormatOption = OutputFormat.TABLE) -> None:
    """Every account's schedule on this Temporal server (its namespace)."""
    run(_list(output))


async def _list(output: OutputFormat) -> None:
    temporal = await connect_temporal()
    rows: list[dict[str, Any]] = []
    try:
        async for listed in await temporal.list_schedules():
            if not listed.id.startswith(SCHEDULE_PREFIX) or listed.schedule is None:
                continue
            intervals = listed.schedule.spec.intervals
            info = listed.info
            rows.append(
                {
                    "schedule_id": listed.id,
                    "every": _words(intervals[0].every) if intervals else "",
                    "state": "paused" if listed.schedule.state.paused else "active",
                    "last_run": info.recent_actions[-1].started_at
                    if info and info.recent_actions
                    else None,
                    "next_run": info.next_action_times[0]
                    if info and info.next_action_times and not listed.schedule.state.paused
                    else None,
                }
            )
    except RPCError as error:
        raise temporal_error(error) from None
    rows.sort(key=lambda row: str(row["schedule_id"]))
    emit(
        rows,
        [
            Column("schedule_id", "Schedule", whole=True),
            Column("every", "Every"),
            Column("state", "State"),
            Column("last_run", "Last run"),
            Column("next_run", "Next run"),
        ],
        output,
        title="Schedules",
        empty="No schedule: `starter.py schedule create --every 6h` makes one.",
    )


# pause, unpause, trigger, delete -------------------------------------------------------


@schedule_app.command("pause", cls=Command, epilog=EXIT_CODES_EPILOG)
def pause(account: AccountOption = None) -> None:
    """Stop the runs (a run going on finishes) until `schedule unpause`."""
    run(_act(account, "pause"))


@schedule_app.command("unpause", cls=Command, epilog=EXIT_CODES_EPILOG)
def unpause(account: AccountOption = None) -> None:
    """Run on schedule again; runs missed while paused are not made up."""
    run(_act(account, "unpause"))


@schedule_app.command("trigger", cls=Command, epilog=EXIT_CODES_EPILOG)
def trigger(account: AccountOption = None) -> None:
    """Run now (nothing happens if a run is going on: it is enough)."""
    run(_act(account, "trigger"))


@schedule_app.command("delete", cls=Command, epilog=EXIT_CODES_EPILOG)
def delete(account: AccountOption = None) -> None:
    """Remove the schedule; a run going on finishes, batches and the ledger stay."""
    run(_act(account, "delete"))


async def _act(account: str | None, what: str) -> None:
    async with account_session(account) as session:
        temporal = await connect_temporal()
        handle = _handle(temporal, session)
        await _described(handle, session)
        try:
            if what == "pause":
                await handle.pause(note="paused by starter.py schedule pause")
                said = "is paused: no run starts until `starter.py schedule unpause`"
            elif what == "unpause":
                await handle.unpause(note="unpaused by starter.py schedule unpause")
                said = "runs on schedule again"
            elif what == "trigger":
                await handle.trigger(overlap=ScheduleOverlapPolicy.SKIP)
                said = "runs now, unless a run is going on (`starter.py schedule show`)"
            else:
                await handle.delete()
                said = "is deleted; its batches stay in the ledger and in `starter.py batches`"
        except RPCError as error:
            raise temporal_error(error) from None
    typer.echo(f"Schedule {handle.id} {said}.")


# the blocklist's trigger --------------------------------------------------------------


async def blocklist_changed(session: AccountSession) -> None:
    """Runs the account's schedule now, if it has one and it is not paused: a person who
    blocks an artist expects the songs gone soon. Never fails the change itself: the
    blocklist is changed already, and the schedule's next run enforces it anyway."""
    schedule_id = keep_schedule_id(session.account_label)
    console = terminal(stderr=True)
    try:
        temporal = await connect_temporal()
        handle = temporal.get_schedule_handle(schedule_id)
        description = await handle.describe()
        if description.schedule.state.paused:
            console.print(f"The schedule {schedule_id} is paused: it enforces the change "
                          "once unpaused.")  # fmt: skip
            return
        await handle.trigger(overlap=ScheduleOverlapPolicy.SKIP)
    except TemporalUnreachable as error:
        console.print(f"note: {error} The schedule (if any) runs at its next time.")
        return
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            console.print(f"note: the schedule {schedule_id} was not triggered: {error}")
        return
    console.print(f"The schedule {schedule_id} runs now to enforce the change.")


# shared --------------------------------------------------------------------------------


def _handle(temporal: Client, session: AccountSession) -> ScheduleHandle:
    return temporal.get_schedule_handle(keep_schedule_id(session.account_label))


async def _described(handle: ScheduleHandle, session: AccountSession) -> ScheduleDescription:
    try:
        return await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            fail(
                f"account {session.account_id!r} has no schedule ({handle.id}): "
                "`starter.py schedule create --every 6h` makes one"
            )
        raise temporal_error(error) from None
