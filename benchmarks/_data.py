"""A benchmark's data that is not on this machine ends the command in one message, not a traceback.

Every benchmark reads its data through readers that raise ``FileNotFoundError`` (the library's
``DatasetNotFoundError`` is one) naming the missing file; this turns it into what a new user
needs: the file, where that data comes from, exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

WHERE_DATA_COMES_FROM = (
    "the shared data comes from --data-root (default ../shared/data), the full face and speech sets from "
    "--full-data (../shared/data/build_datasets.sh builds them), the recipes' caches from their own steps "
    "(see the recipe's README)")
MISSING_DATA_STATUS = 2


@contextmanager
def missing_data_exits(command: str) -> Iterator[None]:
    """Within the block, a missing data file or recipe cache prints ``<command>: <what is missing>``
    and where it comes from, and exits with status 2."""
    try:
        yield
    except FileNotFoundError as exc:
        print(f"{command}: {exc}\n  {WHERE_DATA_COMES_FROM}", file=sys.stderr)
        raise SystemExit(MISSING_DATA_STATUS) from None
