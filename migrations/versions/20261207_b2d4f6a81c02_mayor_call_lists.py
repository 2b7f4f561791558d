"""mayor call lists

Revision ID: b2d4f6a81c02
Revises: a1c3e5f70b01
Create Date: 2026-12-07 22:09:03.923013

The mayor's weekly random-call list (issue 6, R5.4): one list per local Monday with the
seed of its reproducible draw, and its entries with the call result recorded by the
mayor's office and the follow-up ticket opened through the intake path.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = 'b2d4f6a81c02'
down_revision: str | None = 'a1c3e5f70b01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mayor_call_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('drawn_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('drawn_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pool_size', sa.Integer(), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['drawn_by_id'], ['staff_users.id'], name=op.f('fk_mayor_call_lists_drawn_by_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mayor_call_lists')),
    sa.UniqueConstraint('week_start', name=op.f('uq_mayor_call_lists_week_start'))
    )
    op.create_table('mayor_call_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('phone_e164', sa.String(length=16), nullable=False),
    sa.Column('neighbourhood_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.Enum('pending', 'reached', 'not_reached', 'wrong_number', name='mayorcallresult', native_enum=False, length=32), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('called_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('follow_up_ticket_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_mayor_call_entries_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_mayor_call_entries_department_id_departments')),
    sa.ForeignKeyConstraint(['follow_up_ticket_id'], ['tickets.id'], name=op.f('fk_mayor_call_entries_follow_up_ticket_id_tickets')),
    sa.ForeignKeyConstraint(['list_id'], ['mayor_call_lists.id'], name=op.f('fk_mayor_call_entries_list_id_mayor_call_lists')),
    sa.ForeignKeyConstraint(['neighbourhood_id'], ['neighbourhoods.id'], name=op.f('fk_mayor_call_entries_neighbourhood_id_neighbourhoods')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['staff_users.id'], name=op.f('fk_mayor_call_entries_recorded_by_id_staff_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_mayor_call_entries_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mayor_call_entries')),
    sa.UniqueConstraint('list_id', 'position', name=op.f('uq_mayor_call_entries_list_id_position')),
    sa.UniqueConstraint('list_id', 'ticket_id', name=op.f('uq_mayor_call_entries_list_id_ticket_id'))
    )
    with op.batch_alter_table('mayor_call_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mayor_call_entries_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mayor_call_entries_phone_e164'), ['phone_e164'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('mayor_call_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mayor_call_entries_phone_e164'))
        batch_op.drop_index(batch_op.f('ix_mayor_call_entries_citizen_id'))

    op.drop_table('mayor_call_entries')
    op.drop_table('mayor_call_lists')
