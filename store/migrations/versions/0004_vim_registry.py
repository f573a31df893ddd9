"""vim registry: registered VIMs with their credentials encrypted at rest

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:12:41.118203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vims',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('vim_type', sa.String(length=64), nullable=False),
    sa.Column('interface_info', sa.JSON(), nullable=False),
    sa.Column('access_info', sa.JSON(), nullable=False),
    sa.Column('access_secrets', sa.Text(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('vims', schema=None) as batch_op:
        batch_op.create_index('ix_vims_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ux_vims_name', ['name'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('vims', schema=None) as batch_op:
        batch_op.drop_index('ux_vims_name')
        batch_op.drop_index('ix_vims_created')

    op.drop_table('vims')
