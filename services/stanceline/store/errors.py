"""Telling a database outage from a poison entry.

Only transient failures are retried as they are; anything else is assumed
to be caused by the batch's content and is isolated by splitting it.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# SQLSTATE classes: connection exception, transaction rollback (deadlock,
# serialization), insufficient resources, operator intervention, system error.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")


class StoreUnavailable(Exception):
    """The database cannot take the batch now; retry the same batch later."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(state, str) and state.startswith(_TRANSIENT_CLASSES):
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return cause is not None and is_transient_driver_error(cause)
    return is_transient_driver_error(exc)


def is_transient_driver_error(exc: BaseException) -> bool:
    name = type(exc).__name__
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_TRANSIENT_CLASSES):
        return True
    return isinstance(exc, ConnectionError | TimeoutError | OSError) or name in {
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "CannotConnectNowError",
        "ConnectionFailureError",
        "InternalClientError",
    }


def exceeds_lock_table(exc: BaseException) -> bool:
    """Postgres' shared lock table ran out ("out of shared memory", with the hint to raise
    ``max_locks_per_transaction``).

    A write transaction takes an advisory lock per statement and per tree and topic it
    touches (``store.locks``), and the table holds about ``max_locks_per_transaction ×
    max_connections`` locks for all sessions together: a large enough batch can never
    fit, however often it is retried. The class (53, insufficient resources) says
    transient; the caller should first try smaller transactions.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out_of_shared_memory = getattr(current, "sqlstate", None) == "53200"
        if out_of_shared_memory and "max_locks_per_transaction" in str(
            getattr(current, "hint", None) or ""
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False
