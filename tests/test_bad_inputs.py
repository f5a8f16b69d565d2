"""A bounded subset of ``scripts/bad_inputs.py``'s catalogue, run in the suite.

Every case is a bad input given to the starter (an ID, a URI, a link, a file, an
option, a setting, a broken ledger) against the in-process sandbox, a fresh ledger and
the dev server with a worker. Each must be refused with an error naming what is wrong,
without a traceback, and change nothing: neither the ledger's rows nor the library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import starter
from scripts.bad_inputs import (
    CATALOGUE,
    Case,
    ledger_digest,
    report,
    run_command_case,
)
from tests.support.cli import Cli

CASES_PER_KIND: Final = 6
"""Enough to cover each kind of input, few enough to keep the suite quick: the whole
catalogue (over a hundred cases) is the script's."""


def bounded_subset() -> list[Case]:
    chosen: list[Case] = []
    taken: dict[str, int] = {}
    for case in CATALOGUE:
        if case.workflow is not None or case.known_gap is not None:
            continue  # workflow inputs: tests/workflows/test_malformed_inputs.py
        if taken.get(case.kind, 0) < CASES_PER_KIND:
            taken[case.kind] = taken.get(case.kind, 0) + 1
            chosen.append(case)
    return chosen


def test_the_catalogue_holds_more_than_80_bad_inputs_of_every_kind() -> None:
    assert len(CATALOGUE) > 80
    assert {case.kind for case in CATALOGUE} >= {
        "id",
        "uri",
        "link",
        "file",
        "option",
        "env",
        "ledger",
        "workflow input",
    }


def test_bad_inputs_are_refused_by_name_and_change_nothing(
    enforcer_cli: Cli, tmp_path: Path
) -> None:
    cli = enforcer_cli
    database = cli.settings.data_dir / "enforcer.db"

    def invoke(args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
        result = cli.runner.invoke(starter.app, list(args), env=dict(env))
        return result.exit_code, result.stdout + result.stderr

    def snapshot() -> tuple[str, Any]:
        return ledger_digest(database), cli.sandbox.dump_user("alice")

    outcomes = [
        run_command_case(case, invoke, snapshot, tmp_path / "cases" / str(number))
        for number, case in enumerate(bounded_subset())
    ]

    assert all(outcome.ok for outcome in outcomes), report(outcomes)
