"""The AES-GCM payload codec and the payload key settings: round trips, rotation,
unknown keys, tampering, plain payloads passed through, and bad settings named."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from enforcer.config import PayloadKey, PayloadSettings, SettingsError, format_payload_key
from workflows.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    AesGcmPayloadCodec,
    PayloadDecryptionError,
    UnknownPayloadKey,
    account_label,
    data_converter,
)

SECRET_ACCOUNT = "spotify-user-8f3c2a"


class Request(BaseModel):
    account_id: str
    playlist_id: str


def new_key(key_id: str) -> PayloadKey:
    return PayloadKey(key_id, os.urandom(32))


def settings(*keys: PayloadKey, current: str | None = None) -> PayloadSettings:
    return PayloadSettings(
        payload_keys=",".join(format_payload_key(key) for key in keys), payload_key_id=current
    )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENFORCER_PAYLOAD_KEYS", "ENFORCER_PAYLOAD_KEY_ID"):
        monkeypatch.delenv(name, raising=False)


async def test_a_value_round_trips_and_its_bytes_show_nothing_of_it() -> None:
    converter = data_converter(settings(new_key("k1")))
    value = Request(account_id=SECRET_ACCOUNT, playlist_id="37i9dQZF1DXcBWIGoYBM5M")

    [payload] = await converter.encode([value])

    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"k1"
    assert SECRET_ACCOUNT.encode() not in payload.SerializeToString()
    assert b"37i9dQZF1DXcBWIGoYBM5M" not in payload.SerializeToString()
    assert await converter.decode([payload], [Request]) == [value]


async def test_each_payload_gets_a_fresh_nonce() -> None:
    codec = AesGcmPayloadCodec([new_key("k1")], "k1")
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"same"')

    first, second = await codec.encode([plain, plain])

    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_after_rotation_old_payloads_still_decode_and_new_ones_use_the_new_key() -> None:
    old, new = new_key("2025-01"), new_key("2025-07")
    before = data_converter(settings(old))
    [written_before] = await before.encode(["old secret"])

    after = data_converter(settings(old, new, current="2025-07"))
    [written_after] = await after.encode(["new secret"])

    assert written_after.metadata[KEY_ID_METADATA] == b"2025-07"
    assert await after.decode([written_before, written_after]) == ["old secret", "new secret"]


async def test_an_unknown_key_id_is_named_and_no_key_is_shown() -> None:
    lost = new_key("lost")
    [payload] = await data_converter(settings(lost)).encode(["x"])
    kept = new_key("kept")

    with pytest.raises(UnknownPayloadKey, match="'lost'") as raised:
        await data_converter(settings(kept)).decode([payload])

    message = str(raised.value)
    assert "kept" in message
    for secret in (lost.secret, kept.secret):
        assert base64.b64encode(secret).decode() not in message


@pytest.mark.parametrize("where", ["ciphertext", "nonce", "key ID"])
async def test_tampering_is_detected(where: str) -> None:
    first, second = new_key("a"), new_key("b")
    codec = AesGcmPayloadCodec([first, second], "a")
    [payload] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    altered = Payload()
    altered.CopyFrom(payload)
    if where == "ciphertext":
        altered.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    elif where == "nonce":
        altered.data = bytes([payload.data[0] ^ 1]) + payload.data[1:]
    else:  # relabelled: a listed key, but not the one that sealed it
        altered.metadata[KEY_ID_METADATA] = b"b"

    with pytest.raises(PayloadDecryptionError, match="fails authentication"):
        await codec.decode([altered])


async def test_plain_payloads_pass_through_so_older_histories_still_read() -> None:
    [plain] = await pydantic_data_converter.encode([Request(account_id="a", playlist_id="p")])

    decoded = await data_converter(settings(new_key("k1"))).decode([plain], [Request])

    assert decoded == [Request(account_id="a", playlist_id="p")]


def test_no_keys_means_the_plain_converter() -> None:
    assert data_converter(PayloadSettings()) is pydantic_data_converter
    assert data_converter(PayloadSettings(payload_keys="  ")) is pydantic_data_converter


def test_the_keys_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = new_key("one"), new_key("two")
    monkeypatch.setenv(
        "ENFORCER_PAYLOAD_KEYS", f"{format_payload_key(first)}, {format_payload_key(second)}"
    )
    assert PayloadSettings().current_key == first
    monkeypatch.setenv("ENFORCER_PAYLOAD_KEY_ID", "two")

    read = PayloadSettings()

    assert read.keys == (first, second)
    assert read.current_key == second
    assert base64.b64encode(second.secret).decode() not in repr(read)


GOOD = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("keys", "current", "named"),
    [
        (f"k1:{GOOD},k1:{GOOD}", None, "key ID 'k1' appears more than once"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), None, "key 'k1' is 16 bytes"),
        ("k1:not*base64", None, "key 'k1' is not base64"),
        (GOOD, None, "entry 1 is not KEY_ID:BASE64_KEY"),
        (f"k1:{GOOD},,", None, "entry 2 is empty"),
        (f"bad id:{GOOD}", None, "entry 1: a key ID is"),
        (f"k1:{GOOD}", "k9", "ENFORCER_PAYLOAD_KEY_ID='k9': not a key of ENFORCER_PAYLOAD_KEYS"),
        ("", "k9", "ENFORCER_PAYLOAD_KEY_ID='k9': not a key"),
    ],
)
def test_a_bad_key_setting_is_named_without_its_key(
    keys: str, current: str | None, named: str
) -> None:
    with pytest.raises(SettingsError, match="ENFORCER_PAYLOAD_KEY") as raised:
        PayloadSettings(payload_keys=keys, payload_key_id=current)

    assert named in str(raised.value)
    assert GOOD not in str(raised.value)
    assert raised.value.__context__ is None  # pydantic's error quotes the input


def test_an_account_label_hides_the_account_and_survives_rotation() -> None:
    first, second = new_key("first"), new_key("second")

    label = account_label(settings(first), SECRET_ACCOUNT)

    assert SECRET_ACCOUNT not in label
    assert label.startswith("acct-")
    assert account_label(settings(first, second, current="second"), SECRET_ACCOUNT) == label
    assert account_label(settings(first), "another-user") != label
    assert account_label(settings(second), SECRET_ACCOUNT) != label
    assert account_label(PayloadSettings(), SECRET_ACCOUNT) == SECRET_ACCOUNT
