"""call record ticket refusal

Revision ID: d4f6b8c0e1a2
Revises: c3e5a7b92d03
Create Date: 2026-12-07 22:30:32.079144

Review of issue 3: whether intake refused an answered call's ticket was read from the
record's free-text note ("no ticket: …"), which a long note could truncate away. It is now
its own column, and the few answered calls still waiting for a ticket have a partial index.
Existing refusals are carried over from the notes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'd4f6b8c0e1a2'
down_revision: str | None = 'c3e5a7b92d03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING = sa.text('answered_at IS NOT NULL AND ticket_id IS NULL AND ticket_refusal IS NULL')


def upgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ticket_refusal', sa.String(length=160), nullable=True))
    op.execute(
        "UPDATE call_records SET ticket_refusal = 'intake refused (see note)' "
        "WHERE note LIKE '%no ticket: %'"
    )
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.create_index(
            'ix_call_records_awaiting_ticket',
            ['answered_at'],
            unique=False,
            postgresql_where=AWAITING,
            sqlite_where=AWAITING,
        )


def downgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_call_records_awaiting_ticket', postgresql_where=AWAITING, sqlite_where=AWAITING
        )
        batch_op.drop_column('ticket_refusal')
