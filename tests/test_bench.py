"""`make bench` in its quickest form, end to end, so that the bench cannot silently rot.

Runs ``bench/run.py --quick`` as `make bench` runs it (a subprocess starting its own
Temporal dev server, sandbox and worker on 127.0.0.1) into a temporary directory, and
checks that results.json holds every section with figures a reader would look for, and
that the page it writes names each of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "engine_vs_loop",
    "replan",
    "call_bounds",
    "history_events",
    "worker_memory",
    "rate_budget",
    "spotipy",
    "rollback",
    "scheduled_run",
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_quick_bench_writes_every_section_with_figures(tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    docs_path = tmp_path / "performance.md"
    finished = subprocess.run(  # noqa: S603 - our own script
        [
            sys.executable,
            "bench/run.py",
            "--quick",
            "--results",
            str(results_path),
            "--docs",
            str(docs_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    results = json.loads(results_path.read_text())
    assert results["failures"] == []
    assert results["nproc"]
    assert results["machine"]
    assert results["date"]
    sections = results["sections"]
    assert set(SECTIONS) <= set(sections)
    for name in SECTIONS:
        assert sections[name]["settings"], f"{name} states no settings"

    for key in ("zero_latency", "latency"):
        part = sections["engine_vs_loop"][key]
        assert part["runs"]
        for run in part["runs"]:
            assert run["engine_s"] > 0
            assert run["loop_s"] > 0
            # The loop made exactly the engine's calls: the comparison is like for like.
            assert run["loop_calls"] == run["engine_calls"] > 0
            assert run["engine_summary_calls"] == run["engine_calls"]
        assert _number(part["engine_over_loop"])
    for run in sections["call_bounds"]["enforcement"]:
        assert run["write_calls"] >= run["lower_bound"] > 0
    for run in sections["call_bounds"]["scan"]:
        assert run["read_calls"] >= run["lower_bound"] > 0
    for run in sections["history_events"]["runs"]:
        assert run["events"] > 0
        assert _number(run["per_1000_items"])
    sizes = sections["worker_memory"]["sizes"]
    assert len(sizes) == 2
    assert sizes[0]["planned_items"] < sizes[1]["planned_items"]
    assert all(row["peak_rss_mib"] > 0 and row["ms_per_item"] > 0 for row in sizes)
    assert sections["worker_memory"]["million"]["why"]
    for phase in ("enforcement", "rollback"):
        budget = sections["rate_budget"][phase]
        assert budget["calls"] > 0
        assert _number(budget["time_over_least"])
        assert budget["violations"] == 0
        assert budget["summary_calls"] == budget["calls"]
    spotipy = sections["spotipy"]
    assert spotipy["plain"]["calls"] > 0
    assert spotipy["plain"]["left_in_library"] == 0
    stormed = spotipy["retry_after"]
    assert stormed["rate_limited"] == 1
    assert stormed["left_in_library"] == 0
    # spotipy waited the Retry-After it was given before sending again.
    assert stormed["gap_after_429_s"] >= stormed["retry_after_s"] - 0.1
    replanned = sections["replan"]
    assert replanned["same_plan"] is True
    assert replanned["playlist_item_reads"] == 0
    assert replanned["replan_reads"] < replanned["first_plan_reads"]
    # Issue [G]: after 3 blocked songs liked and 2 added to one playlist, the scheduled
    # run removes those 5 with one library call and one playlist call, reading only
    # that playlist's items.
    kept = sections["scheduled_run"]
    assert kept["removed"] == 5
    assert kept["left_in_library"] == 0
    assert (kept["library_write_calls"], kept["playlist_write_calls"]) == (1, 1)
    assert kept["write_calls"] == 2
    assert kept["only_the_edited_playlist_read"] is True
    assert kept["run_before_the_edit"]["batches"] == 0  # nothing to do: no empty batch
    rollback = sections["rollback"]
    assert rollback["library_back_exactly"] is True
    assert rollback["calls"] >= rollback["lower_bound"] > 0
    assert rollback["summary_calls"] == rollback["calls"]
    assert results["targets"]
    assert all("met" in target for target in results["targets"])
    page = docs_path.read_text()
    assert "## Targets" in page
    assert "Machine:" in page
    assert "Command:" in page
