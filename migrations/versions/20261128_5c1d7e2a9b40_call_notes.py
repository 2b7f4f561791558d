"""call notes

Revision ID: 5c1d7e2a9b40
Revises: 386fe0403300
Create Date: 2026-11-28 12:00:00.000000

Agent console (issue 4 item 3): the switchboard operator's note about a call, keyed on the
call id so that it travels with the call to whoever answers it next (decision 0018).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = '5c1d7e2a9b40'
down_revision: str | None = '386fe0403300'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('call_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('transfer_target', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['staff_users.id'], name=op.f('fk_call_notes_author_id_staff_users')),
    sa.ForeignKeyConstraint(['call_id'], ['call_records.call_id'], name=op.f('fk_call_notes_call_id_call_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_notes'))
    )
    op.create_index('ix_call_notes_call_at', 'call_notes', ['call_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_call_notes_call_at', table_name='call_notes')
    op.drop_table('call_notes')
