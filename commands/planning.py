"""`plan`, `show-plan` and `plans`: the dry run a person reads before anything changes.

``run_planning`` and ``dry_run_before_enforcing`` are what ``enforce --plan-now`` and
``demo`` share with ``plan``: the same workflow, the same dry run.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from commands._inputs import seconds, whole_number_from
from commands._output import Column, FormatOption, OutputFormat, emit, terminal
from commands._runtime import AccountOption, AccountSession, account_session, fail, run
from commands._temporal import root_cause
from commands._waiting import wait_saying_why
from enforcer.config import Settings
from enforcer.dryrun import NOTHING_TO_ENFORCE, enforce_command, render_plan
from enforcer.models import Plan, PlanOptions, PlanRequest, PlanResult, Policy
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

FullScanOption = Annotated[
    bool,
    typer.Option(
        "--full",
        help="Read the whole library again, not only what changed since the last plan.",
    ),
]


def plan(
    policy: Annotated[Policy, typer.Option(help="Which credits block a track.")] = Policy.FEATURED,
    collaborative: Annotated[
        bool,
        typer.Option("--collaborative", help="Also edit collaborative playlists you do not own."),
    ] = False,
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
    """The planning's result, saying meanwhile what it waits for; an unreachable Spotify
    ends it after ``give_up_after`` seconds (default: the settings'). ``full`` reads the
    whole library, not only what changed since the last completed scan."""
    temporal = await connect_temporal()
    workflow_id = planning_workflow_id(session.account_label, options, full=full)
    console = terminal(stderr=True)
    reading = (
        f"Reading the library of {session.account_id} (workflow {workflow_id}); "
        "a large library takes a while"
    )
    status = console.status(reading)
    try:
        with status:
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
                console=console,
                update_spinner=lambda text: status.update(f"{reading}\n{text}"),
            )
    except WorkflowFailureError as error:
        fail(f"planning failed: {root_cause(error)}")


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
