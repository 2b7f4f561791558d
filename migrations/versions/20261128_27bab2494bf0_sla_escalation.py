"""sla escalation

Revision ID: 27bab2494bf0
Revises: 7ed3c8658ce9
Create Date: 2026-11-28 07:48:13.124913

SLA clocks and escalation (issue 5): escalation policies per unit, the clock and
escalation columns of tickets, and the SMS delivery-receipt columns of notifications.

Data: open tickets are armed for the first sweep (``next_escalation_at = received_at``; the
sweep computes each one's real next step, see docs/sla.md), tickets already waiting get a
paused clock from their last change, and reopened tickets start their cycle at their last
reopening.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = '27bab2494bf0'
down_revision: str | None = '7ed3c8658ce9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = "('new', 'forwarded', 'in_progress', 'reopened')"
PAUSED = "('waiting_on_citizen', 'referred_externally')"


def upgrade() -> None:
    op.create_table('escalation_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_tr', sa.String(length=160), nullable=False),
    sa.Column('name_en', sa.String(length=160), nullable=False),
    sa.Column('reminder_percent', sa.Integer(), nullable=False),
    sa.Column('superior_unit_after_hours', sa.Integer(), nullable=False),
    sa.Column('deputy_mayor_after_hours', sa.Integer(), nullable=True),
    sa.Column('mayor_after_hours', sa.Integer(), nullable=True),
    sa.Column('notify_email', sa.Boolean(), nullable=False),
    sa.Column('notify_sms', sa.Boolean(), nullable=False),
    sa.CheckConstraint('deputy_mayor_after_hours IS NULL OR deputy_mayor_after_hours >= superior_unit_after_hours', name=op.f('ck_escalation_policies_deputy_after_superior')),
    sa.CheckConstraint('mayor_after_hours IS NULL OR deputy_mayor_after_hours IS NULL OR mayor_after_hours >= deputy_mayor_after_hours', name=op.f('ck_escalation_policies_mayor_after_deputy')),
    sa.CheckConstraint('mayor_after_hours IS NULL OR mayor_after_hours >= superior_unit_after_hours', name=op.f('ck_escalation_policies_mayor_after_superior')),
    sa.CheckConstraint('reminder_percent BETWEEN 1 AND 99', name=op.f('ck_escalation_policies_reminder_percent_range')),
    sa.CheckConstraint('superior_unit_after_hours >= 0', name=op.f('ck_escalation_policies_superior_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_policies')),
    sa.UniqueConstraint('code', name=op.f('uq_escalation_policies_code'))
    )
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a referencing column in place; a batch copy of `departments` would have
        # to drop a table that staff, tickets and types refer to.
        op.execute(
            'ALTER TABLE departments ADD COLUMN escalation_policy_id INTEGER '
            'CONSTRAINT fk_departments_escalation_policy_id_escalation_policies '
            'REFERENCES escalation_policies (id)'
        )
    else:
        with op.batch_alter_table('departments', schema=None) as batch_op:
            batch_op.add_column(sa.Column('escalation_policy_id', sa.Integer(), nullable=True))
            batch_op.create_foreign_key(batch_op.f('fk_departments_escalation_policy_id_escalation_policies'), 'escalation_policies', ['escalation_policy_id'], ['id'])

    # Plain ALTER TABLE ... ADD COLUMN / CREATE INDEX (no batch copy: on SQLite a copy would
    # drop tables that other tables refer to).
    op.add_column('notifications', sa.Column('delivery_status', sa.String(length=20), nullable=True))
    op.add_column('notifications', sa.Column('delivered_at', models.base.UTCDateTime(timezone=True), nullable=True))

    op.add_column('tickets', sa.Column('sla_cycle', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('tickets', sa.Column('sla_started_at', models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('sla_paused_at', models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('sla_paused_seconds', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('tickets', sa.Column('next_escalation_at', models.base.UTCDateTime(timezone=True), nullable=True))

    op.execute(
        'UPDATE tickets SET sla_started_at = ('
        "SELECT MAX(e.at) FROM ticket_events e WHERE e.ticket_id = tickets.id AND e.action = 'reopened'"
        ") WHERE status = 'reopened'"
    )
    op.execute(f'UPDATE tickets SET sla_paused_at = updated_at WHERE status IN {PAUSED}')
    op.execute(f'UPDATE tickets SET next_escalation_at = received_at WHERE status IN {RUNNING}')

    op.create_index('ix_tickets_next_escalation_at', 'tickets', ['next_escalation_at'], unique=False, postgresql_where=sa.text('next_escalation_at IS NOT NULL'), sqlite_where=sa.text('next_escalation_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_tickets_next_escalation_at', table_name='tickets', postgresql_where=sa.text('next_escalation_at IS NOT NULL'), sqlite_where=sa.text('next_escalation_at IS NOT NULL'))
    op.drop_column('tickets', 'next_escalation_at')
    op.drop_column('tickets', 'sla_paused_seconds')
    op.drop_column('tickets', 'sla_paused_at')
    op.drop_column('tickets', 'sla_started_at')
    op.drop_column('tickets', 'sla_cycle')

    op.drop_column('notifications', 'delivered_at')
    op.drop_column('notifications', 'delivery_status')

    # SQLite cannot drop a referencing column in place: this batch copies `departments`, which
    # needs foreign keys off on SQLite when other rows refer to it.
    with op.batch_alter_table('departments', schema=None) as batch_op:
        if op.get_bind().dialect.name != 'sqlite':  # SQLite reflects the in-line key unnamed
            batch_op.drop_constraint(batch_op.f('fk_departments_escalation_policy_id_escalation_policies'), type_='foreignkey')
        batch_op.drop_column('escalation_policy_id')

    op.drop_table('escalation_policies')
