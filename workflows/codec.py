"""Private payloads: an AES-GCM payload codec and the data converter built from settings.

Invariants:
- With no key set, the data converter is the plain pydantic one: payloads as before.
- With keys, every payload the SDK writes (inputs, results, heartbeat details, memos,
  and failures, whose messages and stack traces move into an encoded payload) is
  encrypted with the current key: AES-256-GCM, a fresh 12-byte nonce per payload, the
  key ID in clear in the metadata (``encryption-key-id``) and bound to the ciphertext
  as associated data, so relabelling a payload with another key ID fails like any
  other tampering.
- Decoding passes a payload that is not encrypted through unchanged (histories written
  before encryption was turned on still read), refuses one whose key ID is not listed
  (naming the ID, never a key) and one whose bytes were altered.
- Not workflow code: the worker and the client apply it outside the sandbox.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from enforcer.config import PayloadKey, PayloadSettings

ENCRYPTED_ENCODING: Final = b"binary/encrypted"
KEY_ID_METADATA: Final = "encryption-key-id"
NONCE_BYTES: Final = 12


class PayloadDecryptionError(ValueError):
    """An encrypted payload cannot be decrypted; the message names its key ID."""


class UnknownPayloadKey(PayloadDecryptionError):
    """The payload was encrypted with a key that is not among the configured ones."""


class AesGcmPayloadCodec(PayloadCodec):
    """Encrypts with the current key; decrypts with whichever listed key a payload names."""

    def __init__(self, keys: Sequence[PayloadKey], current_key_id: str) -> None:
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}
        if current_key_id not in self._ciphers:
            raise ValueError(f"the current key ID {current_key_id!r} is not among the keys")
        self._current_key_id = current_key_id

    @property
    def current_key_id(self) -> str:
        return self._current_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(payload) for payload in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        key_id = self._current_key_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current_key_id].encrypt(
            nonce, payload.SerializeToString(), key_id
        )
        return Payload(
            metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownPayloadKey(
                f"a payload is encrypted with key ID {key_id!r}, which is not among the "
                f"payload keys ({', '.join(self._ciphers)}): add that key to "
                "ENFORCER_PAYLOAD_KEYS"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"a payload encrypted with key ID {key_id!r} fails authentication: it was "
                "altered, or the key listed under that ID is not the one that encrypted it"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def payload_codec(settings: PayloadSettings) -> AesGcmPayloadCodec | None:
    """The codec the settings ask for; None when no payload key is set."""
    current = settings.current_key
    if current is None:
        return None
    return AesGcmPayloadCodec(settings.keys, current.key_id)


def data_converter(settings: PayloadSettings) -> DataConverter:
    """The one data converter of the starter, the worker and the codec server."""
    codec = payload_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        # A failure's message and stack trace can quote IDs: encrypt them too.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


ACCOUNT_LABEL_PREFIX: Final = "acct-"


def account_label(settings: PayloadSettings, account_id: str) -> str:
    """What Temporal's unencrypted fields (workflow IDs, search attributes) call an
    account: its ID without encryption, else a keyed hash of it.

    The hash is keyed by the first key listed, not the current one, so that a rotation
    (which adds keys after it) leaves every account's label, and so every batch's
    workflow ID, as it was.
    """
    if not settings.keys:
        return account_id
    anchor = settings.keys[0].secret
    digest = hmac.new(anchor, b"account-label\0" + account_id.encode(), hashlib.sha256)
    return ACCOUNT_LABEL_PREFIX + digest.hexdigest()[:20]
