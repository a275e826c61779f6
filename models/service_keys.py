"""Secrets the service makes for itself, kept in the database so that every process shares them."""

from __future__ import annotations

import secrets

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.engine import read_transaction, write_transaction
from models.tables import service_keys

KEY_BYTES = 32


async def get_or_create(engine: AsyncEngine, name: str) -> bytes:
    """The key called `name`, made (256 random bits) by whichever process asks first."""
    query = select(service_keys.c.secret).where(service_keys.c.name == name)
    async with read_transaction(engine) as conn:
        found = (await conn.execute(query)).scalar_one_or_none()
    if found is not None:
        return bytes.fromhex(found)
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(
                insert(service_keys).values(name=name, secret=secrets.token_hex(KEY_BYTES))
            )
    except IntegrityError:
        pass  # another process made it first: use theirs
    async with read_transaction(engine) as conn:
        return bytes.fromhex((await conn.execute(query)).scalar_one())
