"""SQLite files are created readable by their owner only (SPEC §10): they hold every cluster,
the token digests and the key that signs cursors."""

from __future__ import annotations

import stat
from pathlib import Path

from models.engine import create_engine, write_transaction
from models.migrations import upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    # given: a database file that does not exist yet
    path = tmp_path / "new.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        # when: it is created, migrated and written (WAL mode makes -wal and -shm)
        await upgrade(engine)
        async with write_transaction(engine) as conn:
            await conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        # then
        files = [path, tmp_path / "new.db-wal", tmp_path / "new.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await engine.dispose()


async def test_an_existing_database_keeps_the_mode_its_operator_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    assert _mode(path) == 0o640
