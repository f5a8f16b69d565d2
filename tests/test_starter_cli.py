"""The command line as a whole: ``status --format csv``, ``--account`` on the commands
that take a batch, the exit codes, ``--help`` as a person reads it, and the demo saying
each thing once.

Commands run through typer's ``CliRunner`` against the real Temporal dev server, a worker
in a thread of this process and the in-process sandbox (``tests/support/cli.py``).
"""

from __future__ import annotations

import csv
import io
import json

import starter
from enforcer.sandbox import Faults
from tests.support.cli import Cli
from tests.test_starter_enforce import planned, wait_for_status
from workflows.enforcement import enforcement_workflow_id

EXIT_BATCH_UNSUCCESSFUL = 3


def _enforced(cli: Cli) -> tuple[dict[str, object], str]:
    plan = planned(cli)
    cli.ok("enforce", str(plan["id"]), "--yes", "--watch")
    return plan, enforcement_workflow_id("alice", str(plan["id"]))


# status --format csv -------------------------------------------------------------------


def test_status_csv_is_one_row_per_kind_of_item_with_the_batch_on_every_row(
    enforcer_cli: Cli,
) -> None:
    _, batch_id = _enforced(enforcer_cli)
    summary = json.loads(enforcer_cli.ok("status", batch_id, "--format", "json"))["summary"]

    rows = list(csv.DictReader(io.StringIO(enforcer_cli.ok("status", batch_id, "--format", "csv"))))

    assert rows, "no rows"
    assert {row["batch_id"] for row in rows} == {batch_id}
    assert {row["state"] for row in rows} == {"ended"}
    assert {row["status"] for row in rows} == {"completed"}
    by_kind = {row["entity_type"]: row for row in rows}
    assert set(by_kind) == set(summary["totals"])
    for kind, total in summary["totals"].items():
        tally = summary["tallies"][kind]
        assert by_kind[kind]["planned"] == str(total)
        assert by_kind[kind]["completed"] == str(tally["completed"])
        assert by_kind[kind]["failed"] == str(tally["failed"])
        assert by_kind[kind]["skipped"] == str(tally["skipped"])


# --account -----------------------------------------------------------------------------


def test_a_batch_of_another_account_is_refused_naming_both(enforcer_cli: Cli) -> None:
    _, batch_id = _enforced(enforcer_cli)
    enforcer_cli.log_in("bob", "Bob")

    for command in ("status", "items", "rollback", "pause"):
        extra = ("--yes",) if command == "rollback" else ()
        error = enforcer_cli.fails(command, batch_id, "--account", "bob", *extra)
        assert "'alice'" in error, (command, error)
        assert "'bob'" in error, (command, error)
        assert "--account" in error

    shown = json.loads(
        enforcer_cli.ok("status", batch_id, "--account", "alice", "--format", "json")
    )
    assert shown["summary"]["batch_id"] == batch_id


# exit codes ----------------------------------------------------------------------------


def test_exit_codes_done_error_usage_and_a_batch_ended_cancelled(enforcer_cli: Cli) -> None:
    plan = planned(enforcer_cli)
    plan_id = str(plan["id"])
    batch_id = enforcement_workflow_id("alice", plan_id)
    # Every Spotify call now takes 2 s: the batch still runs when it is cancelled.
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=2000))
    enforcer_cli.ok("enforce", plan_id, "--yes", "--max-in-flight", "1")
    wait_for_status(enforcer_cli, batch_id, "running")
    assert enforcer_cli("status", batch_id).exit_code == 0  # running: nothing ended yet
    enforcer_cli.ok("cancel", batch_id)

    watched = enforcer_cli("status", batch_id, "--watch")
    assert watched.exit_code == EXIT_BATCH_UNSUCCESSFUL, (watched.stdout, watched.stderr)
    assert "cancelled" in watched.stdout
    enforcer_cli.sandbox.set_faults(Faults())

    for output in ("table", "json", "csv"):
        shown = enforcer_cli("status", batch_id, "--format", output)
        assert shown.exit_code == EXIT_BATCH_UNSUCCESSFUL, (output, shown.stdout, shown.stderr)
        assert "cancelled" in shown.stdout
    again = enforcer_cli("enforce", plan_id, "--yes", "--watch")
    assert again.exit_code == EXIT_BATCH_UNSUCCESSFUL, (again.stdout, again.stderr)
    assert "already enforced" in again.stdout

    # 1: ours (an unknown batch); 2: typer's own usage error (an option that does not exist).
    assert enforcer_cli("status", "enforce/alice/nope0123456789ab").exit_code == 1
    assert enforcer_cli("status", batch_id, "--no-such-option").exit_code == 2


def test_a_completed_batch_exits_0_whether_watched_or_shown(enforcer_cli: Cli) -> None:
    plan = planned(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", str(plan["id"]))

    assert enforcer_cli("enforce", str(plan["id"]), "--yes", "--watch").exit_code == 0
    assert enforcer_cli("status", batch_id).exit_code == 0
    assert enforcer_cli("status", batch_id, "--format", "csv").exit_code == 0


# --help --------------------------------------------------------------------------------


def test_status_help_shows_types_of_values_and_none_after_flags(cli: Cli) -> None:
    result = cli.runner.invoke(starter.app, ["status", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    shown = result.stdout
    lines = {line.split()[1]: line for line in shown.splitlines() if line.startswith("│ --")}

    assert "<bool>" not in shown
    for flag in ("--watch", "--errors", "--help"):
        assert "<" not in lines[flag], lines[flag]
    assert "<table|json|csv>" in lines["--format"]
    assert "<str>" in lines["--account"]
    assert "status [OPTIONS] {batch_id}" in shown  # typer's own, since 0.27
    assert "Exit codes: 0 done; 1 bad input or error; 2 usage error; 3" in shown


# demo ----------------------------------------------------------------------------------


def test_the_demo_says_each_thing_once(worker_cli: Cli) -> None:
    first = worker_cli("demo", "--user", "alice", "--blocked-artists", "1")
    assert first.exit_code == 0, (first.stdout, first.stderr)
    assert "To enforce it" not in first.stdout  # it enforces the plan itself, next
    assert first.stdout.count("Plan ID: ") == 1
    assert "Nothing to enforce" not in first.stdout
    assert first.stdout.count("This batch in the Temporal Web UI: ") == 1

    # The same blocklist again: the library obeys it already.
    second = worker_cli("demo", "--user", "alice", "--blocked-artists", "1")
    assert second.exit_code == 0, (second.stdout, second.stderr)
    assert "To enforce it" not in second.stdout
    assert second.stdout.count("Nothing to enforce") == 1
