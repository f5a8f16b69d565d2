"""Action items remember the chunk (one Spotify call) and the lane they were cut into.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: items made before this revision have no chunk yet,
    # and ``assign_chunks`` cuts a batch whose items have none.
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chunk", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lane", sa.Integer(), nullable=True))
        batch_op.create_index("ix_action_items_batch_id_chunk", ["batch_id", "chunk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_index("ix_action_items_batch_id_chunk")
        batch_op.drop_column("lane")
        batch_op.drop_column("chunk")
