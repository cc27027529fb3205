"""The first schema: accounts, users, sessions, drivers, devices, receipts.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

A migration is frozen: it spells its types out (TIMESTAMP is what schema.UtcDateTime stores) rather than import
the live schema, which later revisions change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('integrity_code', sa.String(length=64), nullable=False),
        sa.Column('api_secret', sa.String(length=64), nullable=False),
        sa.Column('webhook_secret', sa.String(length=64), nullable=False),
        sa.Column('allowed_origins', sa.Text(), server_default='[]', nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    op.create_table(
        'drivers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
            name=op.f('fk_drivers_account_id'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_drivers')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_drivers_key_hash'))
    )
    op.create_index(op.f('ix_drivers_account_id'), 'drivers', ['account_id'], unique=False)

    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('login', sa.String(length=64), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_users_account_id'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('login', name=op.f('uq_users_login'))
    )
    op.create_index(op.f('ix_users_account_id'), 'users', ['account_id'], unique=False)

    op.create_table(
        'devices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('driver_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
            name=op.f('fk_devices_account_id'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['driver_id'], ['drivers.id'], name=op.f('fk_devices_driver_id'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_devices_token_hash'))
    )
    op.create_index(op.f('ix_devices_account_id'), 'devices', ['account_id'], unique=False)
    op.create_index(op.f('ix_devices_driver_id'), 'devices', ['driver_id'], unique=False)

    op.create_table(
        'sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('expires_at', TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
            name=op.f('fk_sessions_account_id'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    op.create_index(op.f('ix_sessions_expires_at'), 'sessions', ['expires_at'], unique=False)
    op.create_index(op.f('ix_sessions_user_id'), 'sessions', ['user_id'], unique=False)

    op.create_table(
        'receipts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('uuid', sa.Uuid(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('driver_id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.String(length=128), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('packet', sa.Text(), nullable=False),
        sa.Column('callback_success', sa.String(length=1024), nullable=True),
        sa.Column('callback_failed', sa.String(length=1024), nullable=True),
        sa.Column('prog_url', sa.String(length=1024), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('expires_at', TIMESTAMP, nullable=False),
        sa.Column('delivered_at', TIMESTAMP, nullable=True),
        sa.Column('unknown_at', TIMESTAMP, nullable=True),
        sa.Column('finished_at', TIMESTAMP, nullable=True),
        sa.Column('lease_until', TIMESTAMP, nullable=True),
        sa.Column('leased_by', sa.String(length=128), nullable=True),
        sa.Column('deliveries', sa.Integer(), server_default='0', nullable=False),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
            name=op.f('fk_receipts_account_id'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_receipts_device_id'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['driver_id'], ['drivers.id'], name=op.f('fk_receipts_driver_id'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
        sa.UniqueConstraint('account_id', 'idempotency_key', name=op.f('uq_receipts_account_id_idempotency_key')),
        sa.UniqueConstraint('account_id', 'order_id', name=op.f('uq_receipts_account_id_order_id')),
        sa.UniqueConstraint('uuid', name=op.f('uq_receipts_uuid'))
    )
    op.create_index(op.f('ix_receipts_account_id_id'), 'receipts', ['account_id', 'id'], unique=False)
    op.create_index(op.f('ix_receipts_device_id'), 'receipts', ['device_id'], unique=False)
    op.create_index(op.f('ix_receipts_driver_id_state_id'), 'receipts', ['driver_id', 'state', 'id'], unique=False)
    op.create_index(op.f('ix_receipts_finished_at'), 'receipts', ['finished_at'], unique=False)
    op.create_index(op.f('ix_receipts_state_expires_at'), 'receipts', ['state', 'expires_at'], unique=False)
    op.create_index(op.f('ix_receipts_state_lease_until'), 'receipts', ['state', 'lease_until'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_receipts_state_lease_until'), table_name='receipts')
    op.drop_index(op.f('ix_receipts_state_expires_at'), table_name='receipts')
    op.drop_index(op.f('ix_receipts_finished_at'), table_name='receipts')
    op.drop_index(op.f('ix_receipts_driver_id_state_id'), table_name='receipts')
    op.drop_index(op.f('ix_receipts_device_id'), table_name='receipts')
    op.drop_index(op.f('ix_receipts_account_id_id'), table_name='receipts')
    op.drop_table('receipts')
    op.drop_index(op.f('ix_sessions_user_id'), table_name='sessions')
    op.drop_index(op.f('ix_sessions_expires_at'), table_name='sessions')
    op.drop_table('sessions')
    op.drop_index(op.f('ix_devices_driver_id'), table_name='devices')
    op.drop_index(op.f('ix_devices_account_id'), table_name='devices')
    op.drop_table('devices')
    op.drop_index(op.f('ix_users_account_id'), table_name='users')
    op.drop_table('users')
    op.drop_index(op.f('ix_drivers_account_id'), table_name='drivers')
    op.drop_table('drivers')
    op.drop_table('accounts')
