"""nsd management: NS descriptor resources and their subscriptions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:05:12.402117
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ns_descriptors',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('onboarding_state', sa.String(length=16), nullable=False),
    sa.Column('operational_state', sa.String(length=16), nullable=False),
    sa.Column('usage_state', sa.String(length=16), nullable=False),
    sa.Column('user_defined_data', sa.JSON(), nullable=False),
    sa.Column('onboarding_failure', sa.JSON(), nullable=True),
    sa.Column('nsd_id', sa.String(length=255), nullable=True),
    sa.Column('nsd_name', sa.Text(), nullable=True),
    sa.Column('nsd_version', sa.String(length=255), nullable=True),
    sa.Column('nsd_designer', sa.Text(), nullable=True),
    sa.Column('nsd_invariant_id', sa.String(length=255), nullable=True),
    sa.Column('vnf_pkg_ids', sa.JSON(), nullable=False),
    sa.Column('onboarded', sa.JSON(), nullable=True),
    sa.Column('layout', sa.JSON(), nullable=True),
    sa.Column('nsd', sa.JSON(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ns_descriptors', schema=None) as batch_op:
        batch_op.create_index('ix_ns_descriptors_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ux_ns_descriptors_nsd_id', ['nsd_id'], unique=True)

    op.create_table('nsdm_subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('callback_uri', sa.Text(), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=True),
    sa.Column('authentication', sa.JSON(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('nsdm_subscriptions')
    with op.batch_alter_table('ns_descriptors', schema=None) as batch_op:
        batch_op.drop_index('ux_ns_descriptors_nsd_id')
        batch_op.drop_index('ix_ns_descriptors_created')

    op.drop_table('ns_descriptors')
