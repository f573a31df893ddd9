"""vnf instances and lcm op occs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 13:23:28.355250
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('vnf_instances',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vnf_instance_name', sa.Text(), nullable=True),
    sa.Column('vnf_instance_description', sa.Text(), nullable=True),
    sa.Column('vnfd_id', sa.String(length=255), nullable=False),
    sa.Column('vnf_pkg_id', sa.String(length=36), nullable=False),
    sa.Column('vnf_provider', sa.String(length=255), nullable=False),
    sa.Column('vnf_product_name', sa.String(length=255), nullable=False),
    sa.Column('vnf_software_version', sa.String(length=255), nullable=False),
    sa.Column('vnfd_version', sa.String(length=255), nullable=False),
    sa.Column('instantiation_state', sa.String(length=20), nullable=False),
    sa.Column('flavour_id', sa.String(length=255), nullable=True),
    sa.Column('vnf_state', sa.String(length=10), nullable=True),
    sa.Column('scale_levels', sa.JSON(), nullable=False),
    sa.Column('instantiated_info', sa.JSON(), nullable=True),
    sa.Column('vim_connection_info', sa.JSON(), nullable=False),
    sa.Column('vnf_configurable_properties', sa.JSON(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('extensions', sa.JSON(), nullable=False),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('vnf_instances', schema=None) as batch_op:
        batch_op.create_index('ix_vnf_instances_created', ['created_at', 'id'], unique=False)

    op.create_table('vnflcm_subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('callback_uri', sa.Text(), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=True),
    sa.Column('verbosity', sa.String(length=10), nullable=False),
    sa.Column('authentication', sa.JSON(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('vnf_lcm_op_occs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vnf_instance_id', sa.String(length=36), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('operation_state', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('state_entered_time', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('start_time', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('is_automatic_invocation', sa.Boolean(), nullable=False),
    sa.Column('operation_params', sa.JSON(), nullable=False),
    sa.Column('is_cancel_pending', sa.Boolean(), nullable=False),
    sa.Column('cancel_mode', sa.String(length=16), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('resource_changes', sa.JSON(), nullable=True),
    sa.Column('changed_info', sa.JSON(), nullable=True),
    sa.Column('changed_ext_connectivity', sa.JSON(), nullable=True),
    sa.Column('grant_id', sa.String(length=36), nullable=True),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires_at', store.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['vnf_instance_id'], ['vnf_instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('vnf_lcm_op_occs', schema=None) as batch_op:
        batch_op.create_index('ix_vnf_lcm_op_occs_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_vnf_lcm_op_occs_state', ['operation_state', 'lease_expires_at'], unique=False)
        batch_op.create_index('ux_vnf_lcm_op_occs_one_active', ['vnf_instance_id'], unique=True, sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))




def downgrade() -> None:

    with op.batch_alter_table('vnf_lcm_op_occs', schema=None) as batch_op:
        batch_op.drop_index('ux_vnf_lcm_op_occs_one_active', sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))
        batch_op.drop_index('ix_vnf_lcm_op_occs_state')
        batch_op.drop_index('ix_vnf_lcm_op_occs_created')

    op.drop_table('vnf_lcm_op_occs')
    op.drop_table('vnflcm_subscriptions')
    with op.batch_alter_table('vnf_instances', schema=None) as batch_op:
        batch_op.drop_index('ix_vnf_instances_created')

    op.drop_table('vnf_instances')

