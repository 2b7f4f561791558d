"""outbound campaigns

Revision ID: a1c3e5f70b01
Revises: 5c1d7e2a9b40
Create Date: 2026-12-07 22:04:37.570115

Outbound (issue 6, R5.1–R5.6): campaigns, their targets with retry state, call attempts
keyed by the AMI ChannelId, the do-not-call list, and survey answers tied to the attempt
that asked and to the channel that answered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base


revision: str = 'a1c3e5f70b01'
down_revision: str | None = '5c1d7e2a9b40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('survey', 'callback', 'resolution_info', 'delay_notice', 'event_invitation', 'special_group', 'data_completion', name='campaignkind', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('draft', 'running', 'paused', 'stopped', 'finished', name='campaignstatus', native_enum=False, length=32), nullable=False),
    sa.Column('target_source', sa.Enum('resolved_tickets', 'citizen_group', 'csv', 'callback_tasks', name='campaigntargetsource', native_enum=False, length=32), nullable=False),
    sa.Column('target_criteria', sa.JSON(), nullable=False),
    sa.Column('message_tr', sa.Text(), nullable=True),
    sa.Column('message_en', sa.Text(), nullable=True),
    sa.Column('default_language', sa.Enum('tr', 'en', name='language', native_enum=False, length=32), nullable=False),
    sa.Column('window_days', sa.String(length=7), nullable=False),
    sa.Column('window_start', sa.Time(), nullable=False),
    sa.Column('window_end', sa.Time(), nullable=False),
    sa.Column('skip_holidays', sa.Boolean(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_spacing_minutes', sa.Integer(), nullable=False),
    sa.Column('max_concurrent', sa.Integer(), nullable=False),
    sa.Column('calls_per_second', sa.Float(), nullable=False),
    sa.Column('next_dial_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_users.id'], name=op.f('fk_campaigns_created_by_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index('ix_campaigns_status', ['status'], unique=False)

    op.create_table('do_not_call_numbers',
    sa.Column('phone_e164', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('added_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['added_by_id'], ['staff_users.id'], name=op.f('fk_do_not_call_numbers_added_by_id_staff_users')),
    sa.PrimaryKeyConstraint('phone_e164', name=op.f('pk_do_not_call_numbers'))
    )
    op.create_table('campaign_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=48), nullable=False),
    sa.Column('phone_e164', sa.String(length=16), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('callback_task_id', sa.Integer(), nullable=True),
    sa.Column('display_name', sa.String(length=160), nullable=True),
    sa.Column('language', sa.Enum('tr', 'en', name='language', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('pending', 'dialing', 'done', 'exhausted', 'skipped', 'cancelled', name='campaigntargetstatus', native_enum=False, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_outcome', sa.Enum('claimed', 'originated', 'answered', 'no_answer', 'busy', 'failed', name='attemptstatus', native_enum=False, length=32), nullable=True),
    sa.Column('result', sa.String(length=32), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['callback_task_id'], ['callback_tasks.id'], name=op.f('fk_campaign_targets_callback_task_id_callback_tasks')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_targets_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_campaign_targets_citizen_id_citizens')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_campaign_targets_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_targets')),
    sa.UniqueConstraint('campaign_id', 'dedupe_key', name=op.f('uq_campaign_targets_campaign_id_dedupe_key'))
    )
    with op.batch_alter_table('campaign_targets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_targets_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index('ix_campaign_targets_due', ['campaign_id', 'status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_targets_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('call_attempts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('claimed', 'originated', 'answered', 'no_answer', 'busy', 'failed', name='attemptstatus', native_enum=False, length=32), nullable=False),
    sa.Column('worker', sa.String(length=80), nullable=True),
    sa.Column('lease_until', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('originated_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hangup_cause', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_call_attempts_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['target_id'], ['campaign_targets.id'], name=op.f('fk_call_attempts_target_id_campaign_targets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_attempts')),
    sa.UniqueConstraint('target_id', 'number', name=op.f('uq_call_attempts_target_id_number'))
    )
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_call_attempts_campaign_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_index('ix_call_attempts_status_lease', ['status', 'lease_until'], unique=False)

    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=8), server_default='ivr', nullable=False))
        batch_op.create_index(batch_op.f('ix_survey_answers_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_survey_answers_attempt_id_call_attempts'), 'call_attempts', ['attempt_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_survey_answers_attempt_id_call_attempts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_survey_answers_attempt_id'))
        batch_op.drop_column('channel')
        batch_op.drop_column('attempt_id')

    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_call_attempts_status_lease')
        batch_op.drop_index('ix_call_attempts_campaign_status')

    op.drop_table('call_attempts')
    with op.batch_alter_table('campaign_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_targets_ticket_id'))
        batch_op.drop_index('ix_campaign_targets_due')
        batch_op.drop_index(batch_op.f('ix_campaign_targets_citizen_id'))

    op.drop_table('campaign_targets')
    op.drop_table('do_not_call_numbers')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('ix_campaigns_status')

    op.drop_table('campaigns')
