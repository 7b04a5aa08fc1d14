"""Database work from async code (consumers, streams), off the event loop.

Channels' `database_sync_to_async` runs every call on one shared thread by default (thread-sensitive), so
all battles of a process queue behind each other's queries. These calls run on a pool of threads instead,
each with its own connection (pooled by psycopg on PostgreSQL), closed or recycled as Django's request
cycle would.
"""

from concurrent.futures import ThreadPoolExecutor

from channels.db import DatabaseSyncToAsync
from django.conf import settings

_executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="arena-db")


def off_loop(func):
    """`await off_loop(func)(*args, **kwargs)` runs func on a database thread."""
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor)
