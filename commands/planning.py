"""`plan`, `show-plan` and `plans`: the dry run a person reads before anything changes.

``run_planning`` and ``dry_run_before_enforcing`` are what ``enforce --plan-now`` and
``demo`` share with ``plan``: the same workflow, the same dry run.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Annotated, Final

import typer
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from activities import RATE_LIMITED
from activities.library import running_scan
from commands._inputs import seconds, whole_number_from
from commands._output import Column, FormatOption, OutputFormat, emit, terminal
from commands._runtime import AccountOption, AccountSession, account_session, fail, run
from commands._temporal import root_cause
from commands._waiting import LOOK_TIMEOUT, ProgressLine, Waiting, wait_saying_why
from enforcer.config import Settings
from enforcer.dryrun import NOTHING_TO_ENFORCE, enforce_command, render_plan
from enforcer.ledger import Ledger
from enforcer.models import (
    ApiTraffic,
    Plan,
    PlanningProgress,
    PlanOptions,
    PlanRequest,
    PlanResult,
    Policy,
    RunningScan,
    ScanState,
    ScanStep,
)
from enforcer.session import open_ledger
from workflows.connection import configured_task_queue, connect_temporal
from workflows.planning import PlanningWorkflow, planning_workflow_id

MOST_EXAMPLES = 1_000
ExamplesOption = Annotated[
    int,
    typer.Option(
        "--examples",
        callback=whole_number_from(0, MOST_EXAMPLES),
        help="Examples to show per kind of change.",
    ),
]
PolicyOption = Annotated[Policy, typer.Option(help="Which credits block a track.")]
CollaborativeOption = Annotated[
    bool,
    typer.Option("--collaborative", help="Also edit collaborative playlists you do not own."),
]

FullScanOption = Annotated[
    bool,
    typer.Option(
        "--full",
        help="Read the whole library again, not only what changed since the last plan.",
    ),
]


def plan(
    policy: PolicyOption = Policy.FEATURED,
    collaborative: CollaborativeOption = False,
    full: FullScanOption = False,
    output: FormatOption = OutputFormat.TABLE,
    examples: ExamplesOption = 5,
    account: AccountOption = None,
    give_up_after: Annotated[
        str | None,
        typer.Option(
            "--give-up-after",
            metavar="SECONDS",
            help="Stop waiting on a Spotify that cannot be reached after this long "
            "(default: $ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT, else 180).",
        ),
    ] = None,
) -> None:
    """Read your library and print what enforcement would change, and why.

    What has not changed since the last plan (within $ENFORCER_SCAN_MAX_AGE) is not read
    again, unless --full. Nothing is changed: the plan is stored, and
    `starter.py enforce PLAN_ID` carries it out.
    """
    options = PlanOptions(policy=policy, include_collaborative=collaborative)
    give_up = seconds("--give-up-after", give_up_after)
    run(_plan(options, full, output, examples, account, give_up))


async def _plan(
    options: PlanOptions,
    full: bool,
    output: OutputFormat,
    examples: int,
    account: str | None,
    give_up_after: float | None,
) -> None:
    async with account_session(account) as session:
        if not await session.ledger.blocklist(session.account_id):
            fail("the blocklist is empty: add artists with `starter.py blocklist add` first")
        result = await run_planning(session, options, give_up_after, full=full)
        _print_plan(await session.ledger.load_plan(result.plan_id), output, examples)


async def run_planning(
    session: AccountSession,
    options: PlanOptions,
    give_up_after: float | None = None,
    *,
    full: bool = False,
) -> PlanResult:
    """The planning's result, showing meanwhile how far it got and what it waits for (a
    progress line on stderr); an unreachable Spotify ends it after ``give_up_after``
    seconds (default: the settings'). ``full`` reads the whole library, not only what
    changed since the last completed scan."""
    temporal = await connect_temporal()
    workflow_id = planning_workflow_id(session.account_label, options, full=full)
    console = terminal(stderr=True)
    console.print(
        f"Reading the library of {session.account_id} (workflow {workflow_id}); "
        "a large library takes a while",
        markup=False,
        highlight=False,
    )
    try:
        with ProgressLine(console, prefix="planning: ", first="starting") as line:
            handle = await temporal.start_workflow(
                PlanningWorkflow.run,
                PlanRequest(account_id=session.account_id, options=options, full=full),
                id=workflow_id,
                task_queue=configured_task_queue(),
                # A planning of the same account and options already running is joined.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            return await wait_saying_why(
                handle,
                give_up_after=give_up_after or session.settings.spotify_unreachable_timeout,
                line=line,
                say=_ProgressWords(handle, session.ledger),
            )
    except WorkflowFailureError as error:
        fail(f"planning failed: {root_cause(error)}")


async def planning_progress(
    handle: WorkflowHandle[PlanningWorkflow, PlanResult],
    description: WorkflowExecutionDescription,
    ledger: Ledger,
) -> PlanningProgress | None:
    """How far the planning got, each figure from its cheapest exact source: the steps
    and what is done from the workflow (its ``progress`` query); the pages of the scans
    still running from their last heartbeats, and the end of a rate limit from the next
    attempt Temporal scheduled (both in ``description``, which the command reads anyway);
    the requests and 429s from the ledger, which counts each as it happens (neither the
    workflow nor a heartbeat sees them all). None when the workflow does not answer.

    ``description`` must be read before the query: the query then sees every activity
    the description no longer lists as running (Temporal's queries are strongly
    consistent: the answer includes every event recorded before the query was sent)."""
    try:
        progress = await handle.query(PlanningWorkflow.progress, rpc_timeout=LOOK_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return None  # no worker has taken it up yet, or it just ended: the next look tells
    running: list[RunningScan] = []
    waits: list[datetime] = []
    now = datetime.now(UTC)
    for pending in description.raw_description.pending_activities:
        details = await description.data_converter.decode(pending.heartbeat_details.payloads)
        scan = running_scan(pending.activity_type.name, details)
        if scan is not None:
            running.append(scan)
        if (
            pending.last_failure.application_failure_info.type == RATE_LIMITED
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            and pending.HasField("next_attempt_schedule_time")
        ):
            retry = pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
            if retry > now:
                waits.append(retry)
    traffic = await ledger.traffic(progress.scan_id) if progress.scan_id else ApiTraffic()
    return progress.live(running, traffic, min(waits, default=None))


class _ProgressWords:
    """The line's words at each look; a look the workflow does not answer (no worker
    free for a query, say) repeats the last progress known rather than forgetting it."""

    def __init__(self, handle: WorkflowHandle[PlanningWorkflow, PlanResult], ledger: Ledger):
        self._handle, self._ledger = handle, ledger
        self._last: PlanningProgress | None = None

    async def __call__(
        self, description: WorkflowExecutionDescription, waiting: Waiting | None
    ) -> str:
        progress = await planning_progress(self._handle, description, self._ledger)
        self._last = progress or self._last
        return progress_line(self._last, waiting)


_STEP_NAMES: Final = {
    ScanStep.LIKED_SONGS: "liked songs",
    ScanStep.SAVED_ALBUMS: "albums",
    ScanStep.FOLLOWED_ARTISTS: "artists",
    ScanStep.PLAYLISTS: "playlists",
}


def progress_line(progress: PlanningProgress | None, waiting: Waiting | None) -> str:
    """The planning in one line: what it does or waits for, its requests, then each step
    begun (``liked songs 200 in 4 pages``), those still reading first (``, done`` once
    done)."""
    parts: list[str] = []
    if progress is not None and progress.waiting_until is not None:
        parts.append(
            f"waiting for Spotify's rate limit until {progress.waiting_until:%H:%M:%S} UTC"
        )
    elif waiting is not None and waiting.failure_type != RATE_LIMITED:
        parts.append(f"waiting: {waiting.reason}")
    elif progress is not None:
        parts.append(progress.stage)
    else:
        parts.append("starting")
    if progress is None:
        return " · ".join(parts)
    if progress.requests:
        parts.append(
            f"{_count(progress.requests, 'request')}, {progress.rate_limited} answered 429"
        )
    # The steps still reading first: on a narrow terminal the line's end is cut off.
    for step, shown in sorted(
        progress.steps.items(), key=lambda pair: pair[1].state is ScanState.DONE
    ):
        if shown.state is ScanState.NOT_STARTED:
            continue
        read = f"{shown.items} in {_count(shown.pages, 'page')}"
        if step is ScanStep.PLAYLIST_ENTRIES:
            part = f"entries of {shown.playlists_done}/{shown.playlists or 0} playlists {read}"
        else:
            part = f"{_STEP_NAMES[step]} {read}"
        parts.append(part + (", done" if shown.state is ScanState.DONE else ""))
    return " · ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def show_plan(
    plan_id: Annotated[str, typer.Argument(help="A plan ID, as `plan` or `plans` prints it.")],
    output: FormatOption = OutputFormat.TABLE,
    examples: ExamplesOption = 5,
) -> None:
    """Print a stored plan again."""
    run(_show_plan(plan_id, output, examples))


async def _show_plan(plan_id: str, output: OutputFormat, examples: int) -> None:
    async with open_ledger(Settings()) as ledger:
        _print_plan(await ledger.load_plan(plan_id), output, examples)


def plans(output: FormatOption = OutputFormat.TABLE, account: AccountOption = None) -> None:
    """List the stored plans of an account, newest first."""
    run(_plans(output, account))


async def _plans(output: OutputFormat, account: str | None) -> None:
    async with account_session(account) as session:
        records = await session.ledger.plans(session.account_id)
    rows = [
        {
            "plan_id": record.id,
            "created_at": record.created_at,
            "policy": record.options.policy.value,
            "collaborative": "yes" if record.options.include_collaborative else "no",
            "changes": str(sum(record.counts.actions.values())),
            "not_enforced": str(sum(record.counts.not_enforced.values())),
        }
        for record in records
    ]
    emit(
        rows,
        [
            Column("plan_id", "Plan", whole=True),
            Column("created_at", "Created"),
            Column("policy", "Policy"),
            Column("collaborative", "Collaborative"),
            Column("changes", "Changes"),
            Column("not_enforced", "Not enforced"),
        ],
        output,
        title=f"Plans of {session.account_id}",
        empty="No plans yet: run `starter.py plan`.",
    )


def _print_plan(plan: Plan, output: OutputFormat, examples: int) -> None:
    typer.echo(render_plan(plan, output.value, examples=examples, color=sys.stdout.isatty()))


def dry_run_before_enforcing(plan: Plan, examples: int) -> str:
    """The dry run's table without its closing advice ("To enforce it: ...", "Nothing to
    enforce"): printed just before the command enforces the plan itself, which says what
    it does next in its own words."""
    advice = {f"To enforce it: {enforce_command(plan)}", NOTHING_TO_ENFORCE}
    table = render_plan(plan, "table", examples=examples, color=sys.stdout.isatty())
    kept = [line for line in table.splitlines() if _ANSI.sub("", line).strip() not in advice]
    return "\n".join(kept) + "\n"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""A terminal colour code: the table has them on a terminal."""
