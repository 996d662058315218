"""Readers for the public data sets the models are trained and measured on.

Nothing here downloads: each reader takes the folder that holds the data (by default
``../shared/data`` for this project's tests and benchmarks) and fails with a clear error when
it is absent. The library itself never needs any of it at run time.
"""

from affect.datasets._common import DatasetNotFoundError, default_data_root
from affect.datasets.text import (DialogueTurn, TextExample, read_dailydialog, read_dair_emotion, read_goemotions_ekman,
                                  read_meld)

__all__ = [
    "DatasetNotFoundError",
    "DialogueTurn",
    "TextExample",
    "default_data_root",
    "read_dailydialog",
    "read_dair_emotion",
    "read_goemotions_ekman",
    "read_meld",
]
