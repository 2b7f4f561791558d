"""console auth audit

Revision ID: 386fe0403300
Revises: 27bab2494bf0
Create Date: 2026-11-28 09:00:00.000000

Agent console (issue 4): the access audit log (KVKK: citizen record opened, TC number
revealed, recording played, sign-ins) and the sign-in columns of staff users (failed
attempts and lock-out, last sign-in, the language of the console screens).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = '386fe0403300'
down_revision: str | None = '27bab2494bf0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('action', sa.Enum('citizen_opened', 'tc_revealed', 'recording_played', 'sign_in', 'sign_in_failed', 'account_locked', 'sign_out', name='auditaction', native_enum=False, create_constraint=False, length=32), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['staff_users.id'], name=op.f('fk_audit_events_actor_id_staff_users')),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_audit_events_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_audit_events_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    op.create_index('ix_audit_events_at', 'audit_events', ['at'], unique=False)
    op.create_index('ix_audit_events_citizen_at', 'audit_events', ['citizen_id', 'at'], unique=False)
    op.create_index('ix_audit_events_actor_at', 'audit_events', ['actor_id', 'at'], unique=False)

    # Plain ALTER TABLE ... ADD COLUMN (no batch copy: on SQLite a copy would drop a table
    # that other tables refer to).
    op.add_column('staff_users', sa.Column('failed_logins', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('staff_users', sa.Column('locked_until', models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('staff_users', sa.Column('last_login_at', models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('staff_users', sa.Column('ui_language', sa.String(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('ui_language')
        batch_op.drop_column('last_login_at')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')

    op.drop_index('ix_audit_events_actor_at', table_name='audit_events')
    op.drop_index('ix_audit_events_citizen_at', table_name='audit_events')
    op.drop_index('ix_audit_events_at', table_name='audit_events')
    op.drop_table('audit_events')
