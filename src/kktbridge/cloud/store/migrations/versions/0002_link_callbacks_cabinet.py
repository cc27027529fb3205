"""The link, the callbacks and the cabinet: device status, driver presence, callback deliveries, rotation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

One revision for issues 13 and 14, with one section per concern; each section creates what schema.py's
section of the same name describes, and downgrade removes it in reverse.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_link()
    _upgrade_callbacks()
    _upgrade_cabinet()


def downgrade() -> None:
    _downgrade_cabinet()
    _downgrade_callbacks()
    _downgrade_link()


# --- link: driver presence and device status ---------------------------------------------------------------

def _upgrade_link() -> None:
    with op.batch_alter_table('drivers') as batch:
        batch.add_column(sa.Column('link', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('node', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('seen_at', TIMESTAMP, nullable=True))
        batch.add_column(sa.Column('version', sa.String(length=32), nullable=True))
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('status', sa.Text(), nullable=True))
        batch.add_column(sa.Column('status_at', TIMESTAMP, nullable=True))


def _downgrade_link() -> None:
    with op.batch_alter_table('devices') as batch:
        batch.drop_column('status_at')
        batch.drop_column('status')
    with op.batch_alter_table('drivers') as batch:
        for name in ('version', 'seen_at', 'node', 'link'):
            batch.drop_column(name)


# --- callbacks: deliveries to the shop and their attempts ----------------------------------------------------

def _upgrade_callbacks() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    with op.batch_alter_table('receipts') as batch:
        batch.add_column(sa.Column('webhook_url', sa.String(length=1024), nullable=True))
    op.create_table(
        'callbacks',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('receipt_id', big_id, nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('url', sa.String(length=1024), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_at', TIMESTAMP, nullable=True),
        sa.Column('lease_until', TIMESTAMP, nullable=True),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('delivered_at', TIMESTAMP, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('resent_at', TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name='fk_callbacks_account_id', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['receipt_id'], ['receipts.id'], name='fk_callbacks_receipt_id', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_callbacks'),
    )
    op.create_index('ix_callbacks_receipt_id', 'callbacks', ['receipt_id'])
    op.create_index('ix_callbacks_state_next_at', 'callbacks', ['state', 'next_at'])
    op.create_table(
        'callback_attempts',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('callback_id', big_id, nullable=False),
        sa.Column('at', TIMESTAMP, nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['callback_id'], ['callbacks.id'], name='fk_callback_attempts_callback_id',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_callback_attempts'),
    )
    op.create_index('ix_callback_attempts_callback_id', 'callback_attempts', ['callback_id'])


def _downgrade_callbacks() -> None:
    op.drop_table('callback_attempts')
    op.drop_table('callbacks')
    with op.batch_alter_table('receipts') as batch:
        batch.drop_column('webhook_url')


# --- cabinet: what the pages need beyond the above -----------------------------------------------------------

def _upgrade_cabinet() -> None:
    pass


def _downgrade_cabinet() -> None:
    pass
