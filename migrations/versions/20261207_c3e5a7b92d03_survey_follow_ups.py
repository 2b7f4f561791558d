"""survey follow ups

Revision ID: c3e5a7b92d03
Revises: b2d4f6a81c02
Create Date: 2026-12-07 22:12:00.000000

What survey answers set in motion (issue 6, R5.2): supervisor follow-ups of low scores and
the record of "not solved" reopenings (each once per survey), and the SMS fallback's
requests ("reply with a digit"), matched by the sender's number.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = 'c3e5a7b92d03'
down_revision: str | None = 'b2d4f6a81c02'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('survey_follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('neighbourhood_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('reopened', sa.Boolean(), nullable=False),
    sa.Column('escalation_step', sa.String(length=20), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_survey_follow_ups_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['staff_users.id'], name=op.f('fk_survey_follow_ups_closed_by_id_staff_users')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_survey_follow_ups_department_id_departments')),
    sa.ForeignKeyConstraint(['neighbourhood_id'], ['neighbourhoods.id'], name=op.f('fk_survey_follow_ups_neighbourhood_id_neighbourhoods')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_survey_follow_ups_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_follow_ups')),
    sa.UniqueConstraint('survey_key', 'kind', name=op.f('uq_survey_follow_ups_survey_key_kind'))
    )
    with op.batch_alter_table('survey_follow_ups', schema=None) as batch_op:
        batch_op.create_index('ix_survey_follow_ups_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_follow_ups_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('survey_sms_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=64), nullable=False),
    sa.Column('phone_e164', sa.String(length=16), nullable=False),
    sa.Column('language', sa.Enum('tr', 'en', name='language', native_enum=False, length=32), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answer', sa.Integer(), nullable=True),
    sa.Column('reply_ref', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_survey_sms_requests_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_survey_sms_requests_notification_id_notifications')),
    sa.ForeignKeyConstraint(['target_id'], ['campaign_targets.id'], name=op.f('fk_survey_sms_requests_target_id_campaign_targets')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_survey_sms_requests_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_sms_requests')),
    sa.UniqueConstraint('request_key', name=op.f('uq_survey_sms_requests_request_key'))
    )
    with op.batch_alter_table('survey_sms_requests', schema=None) as batch_op:
        batch_op.create_index('ix_survey_sms_requests_phone_expires', ['phone_e164', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_sms_requests_target_id'), ['target_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_sms_requests_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('survey_sms_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_sms_requests_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_survey_sms_requests_target_id'))
        batch_op.drop_index('ix_survey_sms_requests_phone_expires')

    op.drop_table('survey_sms_requests')
    with op.batch_alter_table('survey_follow_ups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_follow_ups_ticket_id'))
        batch_op.drop_index('ix_survey_follow_ups_status_created')

    op.drop_table('survey_follow_ups')
