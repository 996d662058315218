"""A file its reader may not read (mode 000), for tests run as root too.

Root reads any file, whatever its mode, through two capabilities (DAC_OVERRIDE, DAC_READ_SEARCH).
``unreadable`` takes them out of the calling thread's effective set while its block runs and gives
them back after (they stay permitted), so root, the file's owner, meets its mode as any user would.
A test is skipped only where the file can still be read (capabilities that cannot be changed).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2
_CAPABILITY_VERSION_3 = 0x20080522  # linux/capability.h: two 32-bit words of each set


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Sets(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@contextlib.contextmanager
def _without_root_reads() -> Iterator[None]:
    """This thread without root's capabilities to read any file, while the block runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = _Header(_CAPABILITY_VERSION_3, 0)
    sets = (_Sets * 2)()
    if libc.capget(ctypes.byref(header), sets) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    before = sets[0].effective
    sets[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), sets) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    try:
        yield
    finally:
        sets[0].effective = before
        if libc.capset(ctypes.byref(header), sets) != 0:
            raise OSError(ctypes.get_errno(), "capset")


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except PermissionError:
        return False


@contextlib.contextmanager
def unreadable(path: Path) -> Iterator[Path]:
    """``path`` (an existing file) with mode 000 while the block runs, and, for root, this thread
    without the capabilities that read it anyway; its mode is put back after."""
    mode = path.stat().st_mode
    path.chmod(0)
    try:
        with _without_root_reads() if os.geteuid() == 0 else contextlib.nullcontext():
            if _readable(path):
                pytest.skip("this user reads a file of mode 000 (capabilities that cannot be dropped)")
            yield path
    finally:
        path.chmod(mode)
