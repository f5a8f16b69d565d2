"""``worker.py`` as a person starts it, in an environment that is wrong in one way.

Each fault ends the worker with a line naming what is wrong and a non-zero exit, never
with a traceback: exit 1 for a fault of the environment (settings, ledger, Temporal), 2
for a bad option (argparse's usage error).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest
from temporalio.testing import WorkflowEnvironment

ROOT: Final = Path(__file__).resolve().parents[1]
ENDS_WITHIN_SECONDS: Final = 60


def run_worker(
    tmp_path: Path, temporal_address: str, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """``python worker.py ARGS`` with a clean environment plus ``variables``."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TEMPORAL_ADDRESS": temporal_address,
        "ENFORCER_SPOTIFY_CLIENT_ID": "blocklist-enforcer-tests",
        "ENFORCER_DATA_DIR": str(tmp_path / "data"),
        "ENFORCER_TASK_QUEUE": f"worker-faults-{tmp_path.name}",
        **variables,
    }
    return subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=ENDS_WITHIN_SECONDS,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line that says what is wrong: the last on stderr, no traceback before it."""
    assert "Traceback" not in result.stderr + result.stdout
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


def corrupt_ledger(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "enforcer.db").write_bytes(b"this was never a database\n" * 100)


def ledger_of_a_newer_release(data_dir: Path) -> None:
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "enforcer.db") as database:
        database.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        database.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")


def test_a_corrupt_ledger_is_one_line_and_exit_1(tmp_path: Path, temporal_address: str) -> None:
    corrupt_ledger(tmp_path / "data")
    result = run_worker(tmp_path, temporal_address)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: cannot open the ledger at ")
    assert "enforcer.db" in line
    assert "not a database" in line


def test_a_ledger_of_a_newer_release_is_refused(tmp_path: Path, temporal_address: str) -> None:
    ledger_of_a_newer_release(tmp_path / "data")
    result = run_worker(tmp_path, temporal_address)
    assert result.returncode == 1
    assert "9999_from_the_future" in error_line(result)


def test_an_unreachable_temporal_is_named(tmp_path: Path) -> None:
    result = run_worker(tmp_path, "127.0.0.1:1")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: cannot reach the Temporal server at 127.0.0.1:1")


def test_an_unknown_namespace_is_named(tmp_path: Path, temporal_address: str) -> None:
    result = run_worker(tmp_path, temporal_address, TEMPORAL_NAMESPACE="no-such-namespace")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: the Temporal server refused the worker")
    assert "no-such-namespace" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENFORCER_SPOTIFY_CLIENT_ID", ""),
        ("ENFORCER_REDIRECT_PORT", "eighty"),
        ("ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT", "nan"),
        ("ENFORCER_API_BASE_URL", "ftp://api.example"),
    ],
)
def test_a_bad_setting_is_named_with_its_value(
    tmp_path: Path, temporal_address: str, variable: str, value: str
) -> None:
    result = run_worker(tmp_path, temporal_address, **{variable: value})
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: invalid settings: ")
    assert f"{variable}={value!r}" in line


@pytest.mark.parametrize("rate", ["-1", "0", "nan", "inf", "1e9", "fast"])
def test_a_bad_rate_option_is_refused_naming_it(
    tmp_path: Path, temporal_address: str, rate: str
) -> None:
    result = run_worker(tmp_path, temporal_address, "--spotify-activities-per-second", rate)
    assert result.returncode == 2
    line = error_line(result)
    assert "--spotify-activities-per-second" in line
    assert repr(rate) in line


def test_a_bad_rate_in_the_environment_is_refused_naming_it(
    tmp_path: Path, temporal_address: str
) -> None:
    result = run_worker(tmp_path, temporal_address, ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND="-5")
    assert result.returncode == 2
    line = error_line(result)
    assert "ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND" in line
    assert "'-5'" in line
