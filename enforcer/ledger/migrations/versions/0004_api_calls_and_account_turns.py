"""Requests to Spotify counted where they happen, and one writer per account.

``api_calls`` counts every request an owner (a batch or a planning scan) sent, by
endpoint and outcome, written before the request leaves and after it is answered;
``rate_limit_waits`` keeps the periods its requests were kept waiting by 429s;
``account_turns`` holds the one batch that may write to an account's library.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_calls",
        sa.Column("owner_id", sa.String(length=256), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "endpoint", "outcome", name=op.f("pk_api_calls")),
    )
    op.create_table(
        "rate_limit_waits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.String(length=256), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_waits")),
    )
    with op.batch_alter_table("rate_limit_waits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_waits_owner_id", ["owner_id"], unique=False)
    op.create_table(
        "account_turns",
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("batch_id", sa.String(length=256), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_account_turns_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_turns")),
    )


def downgrade() -> None:
    op.drop_table("account_turns")
    with op.batch_alter_table("rate_limit_waits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_waits_owner_id")
    op.drop_table("rate_limit_waits")
    op.drop_table("api_calls")
