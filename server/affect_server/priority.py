"""The lowest CPU priority for the heavy lane's work, so a long clip or a large picture uses only
the cores the ordinary turns leave (Linux schedules each thread on its own nice value; elsewhere
these do nothing)."""

from __future__ import annotations

import os
import threading

LOWEST = 19


def lower_this_thread() -> None:
    """Nice 19 for the calling thread; threads it starts later (a model's pool) inherit it.
    Meant as a ``ThreadPoolExecutor`` initializer."""
    _lower(threading.get_native_id())


def lower_this_process() -> None:
    """Nice 19 for every thread this process has now; threads started later inherit it from
    theirs. For a process that does only heavy work (a Ray heavy-lane replica)."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [threading.get_native_id()]
    for tid in threads:
        _lower(tid)


def _lower(thread_id: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, thread_id, LOWEST)
    except (AttributeError, OSError):
        pass
