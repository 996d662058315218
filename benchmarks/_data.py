"""A benchmark's data that is not on this machine ends the command in one message, not a traceback.

The data readers (``affect.datasets``) raise ``DatasetNotFoundError`` naming the missing file or
folder; this turns it into what a new user needs: the file, where that data comes from, exit
status 2. Any other missing file (a weights file named by ``$AFFECT_FER_MODEL``, a recipe's
cache) is not data: it ends the command in one line naming it, status 1, with no data hint.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from affect.datasets import DatasetNotFoundError

WHERE_DATA_COMES_FROM = (
    "the shared data comes from --data-root (default ../shared/data), the full face and speech sets from "
    "--full-data (../shared/data/build_datasets.sh builds them)")
MISSING_DATA_STATUS = 2
MISSING_FILE_STATUS = 1


@contextmanager
def missing_data_exits(command: str) -> Iterator[None]:
    """Within the block, missing data prints ``<command>: <what is missing>`` and where it comes
    from, and exits with status 2; another missing file prints ``<command>: <the error>`` alone
    and exits with status 1."""
    try:
        yield
    except DatasetNotFoundError as exc:
        print(f"{command}: {exc}\n  {WHERE_DATA_COMES_FROM}", file=sys.stderr)
        raise SystemExit(MISSING_DATA_STATUS) from None
    except FileNotFoundError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        raise SystemExit(MISSING_FILE_STATUS) from None
