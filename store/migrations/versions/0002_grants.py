"""grants: SOL003 grant requests and the NFVO's decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 13:18:33.043167
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.base

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('grants',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vnf_instance_id', sa.String(length=255), nullable=False),
    sa.Column('vnf_lcm_op_occ_id', sa.String(length=255), nullable=False),
    sa.Column('vnfd_id', sa.String(length=255), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('is_automatic_invocation', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.Column('decision', sa.JSON(), nullable=True),
    sa.Column('api_root', sa.Text(), nullable=False),
    sa.Column('created_at', store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', store.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index('ix_grants_state', ['state'], unique=False)
        batch_op.create_index('ix_grants_vnf_lcm_op_occ', ['vnf_lcm_op_occ_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_vnf_lcm_op_occ')
        batch_op.drop_index('ix_grants_state')

    op.drop_table('grants')
