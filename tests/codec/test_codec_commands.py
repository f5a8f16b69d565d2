"""``starter.py codec-key`` and the refusals of ``starter.py codec-server``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import starter
from enforcer.config import PayloadSettings, parse_payload_keys


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENFORCER_PAYLOAD_KEYS", "ENFORCER_PAYLOAD_KEY_ID"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(starter.app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_codec_key_prints_the_line_to_put_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = invoke("codec-key", "--key-id", "2025-first")

    assert code == 0
    name, _, value = out.strip().partition("=")
    assert name == "ENFORCER_PAYLOAD_KEYS"
    monkeypatch.setenv(name, value)
    assert PayloadSettings().current_key is not None
    assert PayloadSettings().keys[0].key_id == "2025-first"


def test_codec_key_with_keys_set_prints_an_entry_to_append(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, first, _ = invoke("codec-key", "--key-id", "one")
    monkeypatch.setenv("ENFORCER_PAYLOAD_KEYS", first.strip().partition("=")[2])

    code, out, err = invoke("codec-key", "--key-id", "two")

    assert code == 0
    assert [key.key_id for key in parse_payload_keys(out.strip())] == ["two"]
    assert "ENFORCER_PAYLOAD_KEY_ID=two" in err
    assert invoke("codec-key", "--key-id", "one")[2] == (
        "error: key ID 'one' is in ENFORCER_PAYLOAD_KEYS already: choose another --key-id\n"
    )


def test_codec_key_refuses_a_bad_key_id() -> None:
    code, out, err = invoke("codec-key", "--key-id", "no spaces")

    assert code == 1
    assert out == ""
    assert err.startswith("error: --key-id 'no spaces'")


def test_codec_server_without_keys_says_there_is_nothing_to_decode() -> None:
    code, _, err = invoke("codec-server")

    assert code == 1
    assert "ENFORCER_PAYLOAD_KEYS is not set" in err


def test_codec_server_with_a_bad_key_names_it_and_does_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENFORCER_PAYLOAD_KEYS", "k1:c2hvcnQ=")

    code, _, err = invoke("codec-server")

    assert code == 1
    assert "key 'k1' is 5 bytes" in err
    assert "c2hvcnQ" not in err
