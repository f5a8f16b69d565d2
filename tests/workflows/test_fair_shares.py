"""Many accounts on one Spotify queue: every chunk activity carries its account's
fairness key, so that a server with fairness on shares the queue's rate by account."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.support.contract import ContractRecorder
from tests.workflows._world import USER, World, workers, world
from tests.workflows.test_enforcement import plan_of, start_enforcement
from workflows.batch import FAIRNESS_KEY_BYTES, fairness_key
from workflows.connection import spotify_task_queue


@pytest.fixture
async def small_world(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    async with world(
        tmp_path, contract_recorder, liked_songs=300, playlists=4, blocked_artists=20
    ) as made:
        yield made


async def test_every_chunk_activity_carries_the_accounts_fairness_key(
    temporal_client: Client, task_queue: str, small_world: World
) -> None:
    async with workers(temporal_client, task_queue, small_world):
        plan = await plan_of(temporal_client, task_queue, small_world)
        handle = await start_enforcement(temporal_client, task_queue, plan.plan_id)
        await handle.result()
        history = await handle.fetch_history()

    spotify_queue = spotify_task_queue(task_queue)
    keys = [
        event.activity_task_scheduled_event_attributes.priority.fairness_key
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.task_queue.name == spotify_queue
    ]
    assert keys, "the batch must have run chunk activities on the Spotify queue"
    assert set(keys) == {USER}  # no encryption here: the label is the account's ID


def test_a_label_longer_than_temporal_takes_becomes_its_hash() -> None:
    short = "a" * FAIRNESS_KEY_BYTES
    long = "a" * (FAIRNESS_KEY_BYTES + 1)
    assert fairness_key(short) == short
    assert fairness_key(long) == hashlib.sha256(long.encode()).hexdigest()
    assert len(fairness_key(long).encode()) <= FAIRNESS_KEY_BYTES
