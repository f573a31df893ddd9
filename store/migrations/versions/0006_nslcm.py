"""ns lifecycle management: NS instance resources and their subscriptions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 16:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ns_instances',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('nsd_id', sa.String(length=255), nullable=False),
    sa.Column('nsd_info_id', sa.String(length=36), nullable=False),
    sa.Column('ns_state', sa.String(length=16), nullable=False),
    sa.Column('flavour_id', sa.String(length=255), nullable=True),
    sa.Column('instantiation_level_id', sa.String(length=255), nullable=True),
    sa.Column('vnf_instances', sa.JSON(), nullable=False),
    sa.Column('virtual_links', sa.JSON(), nullable=False),
    sa.Column('scale_status', sa.JSON(), nullable=False),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ns_instances', schema=None) as batch_op:
        batch_op.create_index('ix_ns_instances_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_ns_instances_nsd_info', ['nsd_info_id'], unique=False)

    op.create_table('nslcm_subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('callback_uri', sa.Text(), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=True),
    sa.Column('verbosity', sa.String(length=10), nullable=False),
    sa.Column('authentication', sa.JSON(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('nslcm_subscriptions')
    with op.batch_alter_table('ns_instances', schema=None) as batch_op:
        batch_op.drop_index('ix_ns_instances_nsd_info')
        batch_op.drop_index('ix_ns_instances_created')

    op.drop_table('ns_instances')
