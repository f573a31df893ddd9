"""ns lcm operation occurrences

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ns_lcm_op_occs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('ns_instance_id', sa.String(length=36), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('operation_state', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('state_entered_time', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('start_time', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('is_automatic_invocation', sa.Boolean(), nullable=False),
    sa.Column('operation_params', sa.JSON(), nullable=False),
    sa.Column('is_cancel_pending', sa.Boolean(), nullable=False),
    sa.Column('cancel_mode', sa.String(length=16), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('resource_changes', sa.JSON(), nullable=True),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires_at', store.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ns_instance_id'], ['ns_instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ns_lcm_op_occs', schema=None) as batch_op:
        batch_op.create_index('ix_ns_lcm_op_occs_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_ns_lcm_op_occs_state', ['operation_state', 'lease_expires_at'], unique=False)
        batch_op.create_index('ux_ns_lcm_op_occs_one_active', ['ns_instance_id'], unique=True, sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))


def downgrade() -> None:
    with op.batch_alter_table('ns_lcm_op_occs', schema=None) as batch_op:
        batch_op.drop_index('ux_ns_lcm_op_occs_one_active', sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))
        batch_op.drop_index('ix_ns_lcm_op_occs_state')
        batch_op.drop_index('ix_ns_lcm_op_occs_created')

    op.drop_table('ns_lcm_op_occs')
