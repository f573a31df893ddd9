"""initial schema: packages, subscriptions, oauth clients, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 12:27:04.673803
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('notification_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.String(length=255), nullable=False),
    sa.Column('callback_uri', sa.Text(), nullable=False),
    sa.Column('authentication', sa.JSON(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('notification_type', sa.String(length=128), nullable=False),
    sa.Column('api_version', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', store.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_notification_outbox_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notification_outbox_subscription', ['subscription_id', 'state', 'id'], unique=False)

    op.create_table('oauth_clients',
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('vnf_packages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('onboarding_state', sa.String(length=16), nullable=False),
    sa.Column('operational_state', sa.String(length=16), nullable=False),
    sa.Column('usage_state', sa.String(length=16), nullable=False),
    sa.Column('user_defined_data', sa.JSON(), nullable=False),
    sa.Column('onboarding_failure', sa.JSON(), nullable=True),
    sa.Column('vnfd_id', sa.String(length=255), nullable=True),
    sa.Column('vnf_provider', sa.String(length=255), nullable=True),
    sa.Column('vnf_product_name', sa.String(length=255), nullable=True),
    sa.Column('vnf_software_version', sa.String(length=255), nullable=True),
    sa.Column('vnfd_version', sa.String(length=255), nullable=True),
    sa.Column('onboarded', sa.JSON(), nullable=True),
    sa.Column('layout', sa.JSON(), nullable=True),
    sa.Column('vnfd', sa.JSON(), nullable=True),
    sa.Column('upload_source', sa.Text(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('vnf_packages', schema=None) as batch_op:
        batch_op.create_index('ix_vnf_packages_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ux_vnf_packages_vnfd_id', ['vnfd_id'], unique=True)

    op.create_table('vnfpkgm_subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('callback_uri', sa.Text(), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=True),
    sa.Column('authentication', sa.JSON(), nullable=True),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )



def downgrade() -> None:

    op.drop_table('vnfpkgm_subscriptions')
    with op.batch_alter_table('vnf_packages', schema=None) as batch_op:
        batch_op.drop_index('ux_vnf_packages_vnfd_id')
        batch_op.drop_index('ix_vnf_packages_created')

    op.drop_table('vnf_packages')
    op.drop_table('oauth_clients')
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_outbox_subscription')
        batch_op.drop_index('ix_notification_outbox_due')

    op.drop_table('notification_outbox')

