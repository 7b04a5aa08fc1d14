"""Database work from async code (consumers, streams), off the event loop.

Channels' `database_sync_to_async` runs every call on one shared thread by default (thread-sensitive), so
all battles of a process queue behind each other's queries. These calls run on a pool of threads instead,
each with its own connection (pooled by psycopg on PostgreSQL), closed or recycled as Django's request
cycle would.
"""

import threading
from concurrent.futures import ThreadPoolExecutor, wait

from channels.db import DatabaseSyncToAsync
from django.conf import settings
from django.db import connections

_executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="arena-db")


def off_loop(func):
    """`await off_loop(func)(*args, **kwargs)` runs func on a database thread."""
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor)


def connections_close() -> None:
    """Close the connection each database thread holds (before a database is dropped, as the tests' is)."""
    everyone = threading.Barrier(settings.DB_THREADS)

    def close() -> None:
        connections.close_all()
        everyone.wait(timeout=10)  # holds this thread, so that each of the others gets one of these calls

    wait([_executor.submit(close) for _ in range(settings.DB_THREADS)], timeout=30)
