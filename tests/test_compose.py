"""docker-compose.yml is a valid Compose file (the Compose Specification's JSON schema,
tests/fixtures/compose-spec.json, see compose-spec.md beside it) in the production shape
docs/operations.md describes, and every service, variable and port the docs name is in
it. No Docker engine runs here: this is what can be checked without one."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from enforcer.config import PayloadSettings, Settings, env_name
from enforcer.ledger import Ledger
from tests.support.ledger import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES
from workflows import search_attributes

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).resolve().parent / "fixtures" / "compose-spec.json"
OPERATIONS = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / ".env.example"

# Variables whose value is a secret (or names the account's app): never written here.
SECRET_NAME = re.compile(r"KEY|PASSWORD|PWD|CLIENT_ID|DATABASE_URL")
INTERPOLATED = re.compile(r"\$\{([A-Z0-9_]+)(?::?[?-][^}]*)?\}")


def load(path: Path = COMPOSE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load()["services"]
    return found


def is_one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no" or "profiles" in service


def test_the_file_is_a_valid_compose_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)

    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(load())
    ]

    assert errors == []


def test_the_schema_catches_what_compose_would_refuse(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad condition are refused."""
    broken = load()
    broken["services"]["worker"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["worker"]["depends_on"]["postgres"]["condition"] = "healthy"
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))

    assert len(list(validator.iter_errors(broken))) >= 2


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        if "build" in service:
            continue  # this project's own image, built from the Dockerfile
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image!r} has no tag"
        assert "/" not in tag, f"{name}: {image!r} has no tag"
        assert tag != "latest", f"{name}: {image!r}"
        assert re.search(r"\d", tag), f"{name}: {image!r} is not a version"


def test_temporal_and_the_ledger_run_on_postgresql() -> None:
    found = services()
    assert found["postgres"]["image"].startswith("postgres:")
    assert found["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert found["temporal"]["environment"]["DB"] == "postgres12"
    assert found["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"
    assert found["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert found["temporal-setup"]["image"].startswith("temporalio/admin-tools:")
    url = found["worker"]["environment"]["ENFORCER_DATABASE_URL"]
    # A database of its own (Temporal's are temporal and temporal_visibility).
    assert re.fullmatch(r"postgresql://enforcer:\$\{[^}]+\}@postgres:5432/enforcer", url), url
    assert found["starter"]["environment"]["ENFORCER_DATABASE_URL"] == url


def test_the_worker_scales() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["healthcheck"]["test"] == ["CMD", "python", "scripts/worker_health.py"]
    assert (ROOT / "scripts" / "worker_health.py").is_file()
    assert "COPY scripts/worker_health.py" in (ROOT / "Dockerfile").read_text()


def test_every_service_is_healthchecked_and_waited_for() -> None:
    found = services()
    for name, service in found.items():
        if not is_one_shot(service):
            assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
        for needed, how in service.get("depends_on", {}).items():
            assert isinstance(how, dict), f"{name} depends on {needed} without a condition"
            condition = how["condition"]
            if is_one_shot(found[needed]):
                assert condition == "service_completed_successfully", (name, needed)
            else:
                assert condition == "service_healthy", (name, needed)


def test_every_published_port_is_on_loopback() -> None:
    published = [
        (name, port) for name, service in services().items() for port in service.get("ports", [])
    ]
    assert published  # the Web UI at least
    for name, port in published:
        assert isinstance(port, str), (name, port)
        assert port.startswith("127.0.0.1:"), (name, port)


def test_no_secret_is_written_in_the_file() -> None:
    for name, service in services().items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable):
                assert INTERPOLATED.search(str(value)), f"{name}: {variable} is written out"
    text = COMPOSE.read_text()
    assert not re.search(r"[A-Za-z0-9_-]{43}=", text)  # a Fernet key
    for required in ("ENFORCER_SPOTIFY_CLIENT_ID", "ENFORCER_TOKEN_KEY", "POSTGRES_PASSWORD"):
        assert re.search(rf"\$\{{{required}:\?", text), f"{required} is not required"


def test_every_variable_it_reads_is_in_the_example_and_the_docs() -> None:
    read = set(INTERPOLATED.findall(COMPOSE.read_text()))
    example = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    documented = set(documented_rows("variable"))

    assert read
    assert read <= example, read - example
    assert read <= documented, read - documented


def documented_table(header: str) -> list[list[str]]:
    """The rows (cells without their backticks) of the docs/operations.md tables whose
    header starts with ``| header |``."""
    rows: list[list[str]] = []
    inside = False
    for line in OPERATIONS.read_text().splitlines():
        if line.startswith(f"| {header} |"):
            inside = True
        elif inside and line.startswith("|") and not line.startswith("|--"):
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
        elif not line.startswith("|"):
            inside = False
    return rows


def documented_rows(header: str) -> list[str]:
    return [row[0] for row in documented_table(header)]


# A service named in a command: `docker compose run --rm starter ...`, `exec -T postgres`.
COMMAND = re.compile(
    r"docker compose (?:run|exec|logs|stop|start|restart)(?: +--?[\w-]+)* +([A-Za-z][\w-]*)"
)


def test_every_service_variable_and_port_the_docs_name_exists() -> None:
    found = services()
    text = COMPOSE.read_text()

    table = documented_table("service")
    assert {row[0] for row in table} == set(found), "docs/operations.md's table of services"
    for name, image, published, _ in table:
        service = found[name]
        if "build" not in service:
            assert service["image"] == image, name
        shown = {port.rsplit(":", 1)[0] for port in service.get("ports", [])}
        assert shown == ({published} if published else set()), name

    for variable in documented_rows("variable"):
        assert re.search(rf"\$\{{{variable}\b", text), variable

    for path in (OPERATIONS, README):
        named = COMMAND.findall(path.read_text()) + re.findall(
            r"--scale ([\w-]+)=", path.read_text()
        )
        assert named, path.name
        for service in named:
            assert service in found, f"{path.name} names {service!r}"


def test_the_docs_check_would_catch_an_unknown_service() -> None:
    assert COMMAND.findall("`docker compose exec -T databse pg_dump`") == ["databse"]
    assert COMMAND.findall("docker compose run --rm starter batches") == ["starter"]


@pytest.mark.parametrize("name", ["worker", "starter"])
def test_the_enforcer_services_run_this_projects_image(name: str) -> None:
    service = services()[name]
    assert service["build"] == "."
    assert service["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def ledger_init_statements(user: str, database: str, password: str) -> list[str]:
    """The SQL of the compose's init script (its `ledger-database` config), with the
    names and the password psql would substitute."""
    script = load()["configs"]["ledger-database"]["content"]
    sql = script.split("<<'SQL'\n", 1)[1].split("\nSQL", 1)[0]
    sql = sql.replace(":'password'", "'" + password.replace("'", "''") + "'")
    sql = re.sub(r"\bUSER enforcer\b", f'USER "{user}"', sql)
    sql = re.sub(
        r"\bDATABASE enforcer OWNER enforcer\b", f'DATABASE "{database}" OWNER "{user}"', sql
    )
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


@pytest.mark.postgres
async def test_the_ledger_database_it_makes_is_migrated_by_its_own_user() -> None:
    """Not a superuser: the ledger's user owns its database, and the worker's migrations
    (Ledger.open) build the schema in it, on PostgreSQL 15 and later, where only a
    database's owner may create in its public schema."""
    suffix = uuid.uuid4().hex[:12]
    user, database = f"ledger_user_{suffix}", f"ledger_db_{suffix}"
    statements = ledger_init_statements(user, database, "it's a secret")
    assert len(statements) == 2
    admin = create_async_engine(
        make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        try:
            async with admin.connect() as connection:
                for statement in statements:
                    await connection.exec_driver_sql(statement)
        except (OSError, DBAPIError) as error:
            if REQUIRE_POSTGRES:
                raise
            pytest.skip(f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {error}")
        url = (
            make_url(POSTGRES_ADMIN_URL)
            .set(
                drivername="postgresql+asyncpg",
                username=user,
                password="it's a secret",
                database=database,
            )
            .render_as_string(hide_password=False)
        )
        ledger = await Ledger.open(url)
        try:
            await ledger.upsert_account("alice", "Alice")
            assert [account.account_id for account in await ledger.accounts()] == ["alice"]
        finally:
            await ledger.close()
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{user}"')
        await admin.dispose()


def documented_postgres_backup() -> list[str]:
    """The commands docs/operations.md gives for the compose's PostgreSQL backup and
    restore, as run inside the postgres service (`docker compose exec -T postgres ...`)."""
    prefix = "docker compose exec -T postgres "
    return [
        line.removeprefix(prefix)
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith(prefix)
    ]


@pytest.mark.postgres
async def test_the_documented_postgres_backup_restores_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_dump while the ledger is in use, then drop, create and pg_restore as the docs
    say: the ledger opens as its own user with what it held at the backup, and writes."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump and pg_restore are not installed here")
    commands = documented_postgres_backup()
    assert [command.split()[0] for command in commands] == [
        "pg_dump",
        "dropdb",
        "createdb",
        "pg_restore",
    ]
    suffix = uuid.uuid4().hex[:12]
    name = f"ledger_{suffix}"  # the database and its user, as `enforcer` in the compose
    server = make_url(POSTGRES_ADMIN_URL)
    monkeypatch.setenv("PGHOST", server.host or "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(server.port or 5432))
    monkeypatch.chdir(tmp_path)
    ours = [re.sub(r"\benforcer\b(?!\.dump)", name, command) for command in commands]
    url = (
        server.set(drivername="postgresql+asyncpg", username=name, database=name)
        .set(password="pw")
        .render_as_string(hide_password=False)
    )
    admin = create_async_engine(
        server.set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )

    async def shell(command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            "/bin/bash", "-c", command, stderr=asyncio.subprocess.PIPE
        )
        _, error = await process.communicate()
        assert process.returncode == 0, (command, error.decode())

    try:
        try:
            async with admin.connect() as connection:
                for statement in ledger_init_statements(name, name, "pw"):
                    await connection.exec_driver_sql(statement)
        except (OSError, DBAPIError) as error:
            if REQUIRE_POSTGRES:
                raise
            pytest.skip(f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {error}")
        ledger = await Ledger.open(url)
        try:
            await ledger.upsert_account("alice", "Alice")
            await shell(ours[0])  # the dump, while the ledger is open
            await ledger.upsert_account("bob", "Bob")  # after the backup: lost
        finally:
            await ledger.close()
        for command in ours[1:]:
            await shell(command)
        restored = await Ledger.open(url)
        try:
            assert [account.account_id for account in await restored.accounts()] == ["alice"]
            await restored.upsert_account("carol", "Carol")  # its user still owns the tables
        finally:
            await restored.close()
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        await admin.dispose()


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
EXAMPLE_VALUES = {
    "ENFORCER_SPOTIFY_CLIENT_ID": "0123456789abcdef0123456789abcdef",
    "ENFORCER_TOKEN_KEY": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGg=",
    "ENFORCER_DB_PASSWORD": "a-password",
}
"""What a person's .env gives the file's required variables."""


def _interpolated(value: str) -> str:
    """``value`` as Compose makes it from the .env: a required variable from
    ``EXAMPLE_VALUES``, an optional one its default."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in EXAMPLE_VALUES:
            return EXAMPLE_VALUES[name]
        assert kind == "-", f"{name} is required but has no example value"
        return rest

    return _INTERPOLATION.sub(one, value)


def test_the_enforcer_services_set_only_real_settings_and_they_load() -> None:
    """Every ENFORCER_* variable a service sets is one the project reads, and the worker's
    and the starter's environments, filled in as a .env would, make valid settings (a
    misspelt variable would be ignored, a wrong value refused only at start)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    read = {env_name(field) for field in Settings.model_fields}
    read |= {env_name(field) for field in PayloadSettings.model_fields}
    read |= {"ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND", "ENFORCER_TASK_QUEUE"}  # worker.py
    read |= {"ENFORCER_DB_PASSWORD"}  # the ledger database's own user (ledger-database)
    for name in ("worker", "starter"):
        environment = services[name]["environment"]
        unknown = {v for v in environment if v.startswith("ENFORCER_")} - read
        assert not unknown, f"{name} sets {unknown}, which nothing reads"
        values = {k: _interpolated(str(v)) for k, v in environment.items()}
        settings = Settings(_env_file=None, **_settings_values(values))
        assert settings.spotify_client_id == EXAMPLE_VALUES["ENFORCER_SPOTIFY_CLIENT_ID"]
        assert settings.database_url is not None


def _settings_values(environment: dict[str, str]) -> dict[str, Any]:
    fields = {env_name(field): field for field in Settings.model_fields}
    return {fields[k]: v for k, v in environment.items() if k in fields}


def test_the_search_attributes_are_registered() -> None:
    setup = yaml.safe_load(COMPOSE.read_text())["services"]["temporal-setup"]
    script = json.dumps(setup)
    for key in search_attributes.ALL:
        assert key.name in script
    assert "Keyword" in script
