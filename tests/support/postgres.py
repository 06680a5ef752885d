"""The PostgreSQL server of the tests: 127.0.0.1:5432, or CHAKONG_TEST_PG to point elsewhere.

The pg_database and ledger_url fixtures (tests/conftest.py) create their
databases and schemas on it.
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

PG_ADMIN_URL = os.environ.get("CHAKONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LEDGER_BACKENDS = ("sqlite", "postgresql")


def pg_admin(url: str, *statements: str) -> None:
    """Run statements on PostgreSQL from a thread of its own (no event loop may be running here)."""
    import asyncpg

    async def run():
        conn = await asyncpg.connect(url, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"
