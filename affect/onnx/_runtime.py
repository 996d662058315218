"""Running an encoder's network with ONNX Runtime instead of PyTorch.

``use_runtime(encoder, "onnx")`` replaces the encoder's network (``TextEncoder.net``,
``FaceEncoder.net``, ``SpeechEncoder.head``) by a stand-in with the same calls whose work is
done by ONNX Runtime sessions over the graphs of ``affect.onnx._graphs``. Everything around
the network (tokenising, face detection, the voice detector, the Whisper encoder, calibration,
the label prior) is untouched, so both runtimes give the same answers up to float rounding
(checked by ``affect.onnx.check_parity``).

Runtimes: ``"torch"`` (PyTorch eager), ``"onnx"`` (float32 graphs; for speech also the
Silero VAD's own ONNX model, which its package ships beside the TorchScript one),
``"onnx-int8"`` (the text encoder's matrix products in int8 by dynamic quantisation; the face
and speech graphs stay float, see ``INT8_ENCODERS``), and ``"auto"``: per encoder, the runtime
``benchmarks.speed`` found fastest (``AUTO_RUNTIMES``) when onnxruntime is installed, else
PyTorch. ``auto`` never picks int8: int8 changes the answers, so it is asked for by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from affect.onnx._graphs import BertEmbedGraph, FaceGraph, SpeechHeadGraph, TextClassifyGraph, to_onnx
from affect.onnx._session import cached, make_session, quantize_int8
from affect.results import Modality
from affect.runtime_names import RUNTIMES, Runtime  # noqa: F401 (Runtime: public here)
# What "auto" runs, from benchmarks/results/speed.md (ONNX Runtime against PyTorch eager, taking
# turns in one run; AMD EPYC, 2 cores, 0% CPU steal, 3% taken by other processes, 2026-12-04
# 12:25): text 2.2x faster at batch 1, 1.1-1.5x at 2-64; face 1.7x at 1, 1.6x at 64; speech (head +
# VAD; the Whisper layers run in torch either way) 1.5x faster at 1, 1.3-1.4x at 2-4, even at 8-16,
# PyTorch 1.2x faster at 32-64. A live turn's batches are small (a few conversations at once),
# so all three run on ONNX. (On an Intel Xeon on 2026-12-03 PyTorch was 1.3x faster for text at 64.)
AUTO_RUNTIMES: Mapping[str, str] = {"text": "onnx", "face": "onnx", "speech": "onnx"}
# Where int8 kept accuracy within 0.5 point on the test sets (affect export's parity report):
# the text encoder's matrix products. The face network is convolutions: ONNX Runtime's dynamic
# int8 of them (ConvInteger, uint8, with MatMul/Gemm) cost more CPU, not less, on 2026-12-05
# (one thread, AMD EPYC, a scratch timing of this module's face graph, no accuracy read):
# face-vgg-distilled-fer@4 1.23 -> 1.87 ms a face at batch 1, 1.13 -> 1.94 at 64; the pair with
# mirrors 4.67 -> 7.62 and 4.57 -> 8.05. Static int8 would need calibration faces shipped with
# the graph; not tried. The speech head is a small part of a speech turn's time. The Whisper
# layers in front of it (43% of a mixed turn's CPU) were tried in torch's dynamic int8 on
# 2026-12-04, one look at the RAVDESS test slice and nothing chosen on it: every Linear
# per channel cost 2.3x less CPU (12.0 against 27.5 ms a 3 s segment, one thread) but UAR fell
# from 0.777 to 0.744 (telephone 0.729 -> 0.732; top labels agree on 96% of clips); the
# feed-forward layers alone 1.6x less, UAR 0.753. Neither is within 0.5 point: not offered. A head
# trained on the int8 layers' own frames (backbone whisper-tiny.en-layers-int8) read 1.4 points
# lower than float32's on the leave-one-corpus-out folds (two seeds; speech model card, round 7):
# not shipped either.
INT8_ENCODERS: tuple[str, ...] = ("text",)
RuntimeSpec = str | Mapping[str, str]


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    return runtime


def onnxruntime_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def resolve_runtime(runtime: str, modality: str) -> str:
    """``"auto"`` made concrete for one modality; any other runtime as given."""
    if check_runtime(runtime) != "auto":
        return runtime
    return AUTO_RUNTIMES.get(modality, "torch") if onnxruntime_installed() else "torch"


def runtime_for(spec: RuntimeSpec, modality: str) -> str:
    """The runtime one modality gets from ``Analyzer(runtime=...)``: one name for all, or a
    mapping by modality (``{"text": "onnx-int8"}``; modalities not named run on PyTorch)."""
    if isinstance(spec, str):
        return resolve_runtime(spec, modality)
    unknown = set(spec) - {m.value for m in Modality}
    if unknown:
        raise ValueError(f"runtime given for unknown modalities {sorted(unknown)}")
    return resolve_runtime(spec.get(modality, "torch"), modality)


# -- graphs of one encoder -------------------------------------------------------------------
def text_graphs(encoder: Any, *, int8: bool = False) -> dict[str, bytes]:
    """The text encoder's two graphs: ``embed`` (BERT + mean pool) and ``classify`` (context
    attention + heads); with ``int8`` the embed graph's matrix products are quantised."""
    net, tokenizer = _torch_net(encoder), encoder.tokenizer
    sha = weights_digest(net)

    def embed() -> bytes:
        tokens = tokenizer(["An example turn, long enough to have some tokens.", "Short."], padding=True,
                           return_tensors="pt")
        return to_onnx(BertEmbedGraph(net), (tokens["input_ids"], tokens["attention_mask"]),
                       ["input_ids", "attention_mask"], ["embedding"],
                       {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                        "embedding": {0: "batch"}})

    def classify() -> bytes:
        dim, window = net.emotion_head.in_features, net.window
        mask = torch.zeros(2, window, dtype=torch.bool)
        mask[0, :2] = True
        example = (torch.randn(2, dim), torch.randn(2, window, dim), mask, torch.full((2, window), 2, dtype=torch.long))
        return to_onnx(TextClassifyGraph(net), example, ["current", "context", "context_mask", "relation"],
                       ["emotion_logits", "sentiment_logits"],
                       {name: {0: "batch"} for name in ("current", "context", "context_mask", "relation",
                                                         "emotion_logits", "sentiment_logits")})

    float_embed = cached(("text-embed", sha), embed)
    graphs = {"embed": float_embed, "classify": cached(("text-classify", sha), classify)}
    if int8:
        graphs["embed"] = cached(("text-embed-int8", sha), lambda: quantize_int8(float_embed))
    return graphs


def face_graph(encoder: Any) -> bytes:
    """The face network with the encoder's test-time views (mirror, crops) and members inside."""
    net = _torch_net(encoder)
    key = ("face", weights_digest(net), str(encoder.flip_tta), str(tuple(encoder.tta_crops)))
    graph = FaceGraph(net, flip=encoder.flip_tta, crops=encoder.tta_crops)
    return cached(key, lambda: to_onnx(graph, (torch.rand(2, 1, 48, 48),), ["faces"], ["probabilities"],
                                       {"faces": {0: "batch"}, "probabilities": {0: "batch"}}))


def speech_head_graph(encoder: Any) -> bytes:
    """The speech head over Whisper encoder frames (the Whisper encoder stays in CTranslate2)."""
    head = _torch_net(encoder)
    mask = torch.ones(2, 25, dtype=torch.bool)
    mask[1, 10:] = False
    example = (torch.randn(2, 25, head.in_dim * head.layers), mask)
    return cached(("speech-head", weights_digest(head)),
                  lambda: to_onnx(SpeechHeadGraph(head), example, ["frames", "mask"], ["emotion_logits"],
                                  {"frames": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"},
                                   "emotion_logits": {0: "batch"}}))


def whisper_layers_graph(encoder: Any) -> bytes:
    """The every-layer Whisper encoder (speech@3's backbone) over log-mels, for export only:
    ONNX Runtime measured no faster than PyTorch for it (benchmarks/results/speed.md's notes)."""
    layers = encoder.backbone.layers
    example = (torch.from_numpy(encoder.backbone.features(np.zeros(32_000, np.float32))[None]).repeat(2, 1, 1),)
    return cached(("whisper-layers", weights_digest(layers)),
                  lambda: to_onnx(layers, example, ["log_mel"], ["layer_states"],
                                  {"log_mel": {0: "batch", 2: "mel_frames"}, "layer_states": {0: "batch", 2: "frames"}}))


# -- stand-ins for the PyTorch networks ------------------------------------------------------
class _StandIn:
    """Anything not run by ONNX Runtime (window, heads' sizes, calibration) comes from the
    PyTorch network it stands in for."""

    def __init__(self, torch_net: torch.nn.Module, runtime: str) -> None:
        self.torch_net = torch_net
        self.runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["torch_net"], name)


class OnnxTextNet(_StandIn):
    """``TextAffectNet``'s ``embed`` and ``classify`` by ONNX Runtime."""

    def __init__(self, torch_net: torch.nn.Module, graphs: Mapping[str, bytes], runtime: str) -> None:
        super().__init__(torch_net, runtime)
        self._embed = make_session(graphs["embed"])
        self._classify = make_session(graphs["classify"])

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self._embed.run(None, {"input_ids": _np(input_ids, np.int64), "attention_mask": _np(attention_mask, np.int64)})
        return torch.from_numpy(out[0])

    def classify(self, current: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor,
                 speaker_relation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emo, sent = self._classify.run(None, {
            "current": _np(current, np.float32), "context": _np(context, np.float32),
            "context_mask": _np(context_mask, np.bool_), "relation": _np(speaker_relation, np.int64)})
        return torch.from_numpy(emo), torch.from_numpy(sent)


class OnnxFaceNet(_StandIn):
    """The face network's ``predict_proba`` by ONNX Runtime, for the views built into the graph."""

    def __init__(self, torch_net: torch.nn.Module, graph: bytes, runtime: str, *, flip: bool, crops: Sequence[int]) -> None:
        super().__init__(torch_net, runtime)
        self._session = make_session(graph)
        self._views = (bool(flip), tuple(crops))

    def predict_proba(self, faces: torch.Tensor, flip: bool = True, crops: Sequence[int] = (40,)) -> torch.Tensor:
        if (bool(flip), tuple(crops)) != self._views:
            raise ValueError(f"this ONNX face graph was built for flip={self._views[0]}, crops={self._views[1]}")
        return torch.from_numpy(self._session.run(None, {"faces": _np(faces, np.float32)})[0])


class OnnxSpeechHead(_StandIn):
    """The speech head by ONNX Runtime: ``head(frames, mask)`` -> logits."""

    def __init__(self, torch_net: torch.nn.Module, graph: bytes, runtime: str) -> None:
        super().__init__(torch_net, runtime)
        self._session = make_session(graph)

    def __call__(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._session.run(None, {"frames": _np(frames, np.float32), "mask": _np(mask, np.bool_)})[0])


def use_runtime(encoder: Any, runtime: str) -> Any:
    """Run ``encoder``'s network on ``runtime`` from now on (in place; returns the encoder).

    Builds (or reads from the cache) the encoder's graphs and opens ONNX Runtime sessions;
    ``"torch"`` puts the PyTorch network back. Encoders standing in for remote ones (Ray
    Serve) are returned unchanged.
    """
    modality = getattr(encoder, "modality", None)
    runtime = resolve_runtime(runtime, getattr(modality, "value", ""))
    if modality in (Modality.TEXT, Modality.FACE) and not hasattr(encoder, "net"):
        return encoder  # a stand-in for an encoder that runs elsewhere
    if modality == Modality.TEXT:
        net = _torch_net(encoder)
        encoder.net = net if runtime == "torch" else OnnxTextNet(
            net, text_graphs(encoder, int8=runtime == "onnx-int8" and "text" in INT8_ENCODERS), runtime)
    elif modality == Modality.FACE:
        net = _torch_net(encoder)
        encoder.net = net if runtime == "torch" else OnnxFaceNet(
            net, face_graph(encoder), runtime, flip=encoder.flip_tta, crops=encoder.tta_crops)
    elif modality == Modality.SPEECH and hasattr(encoder, "head"):
        head = _torch_net(encoder)
        encoder.head = head if runtime == "torch" else OnnxSpeechHead(head, speech_head_graph(encoder), runtime)
        _use_vad_runtime(encoder.vad, runtime)
    else:
        return encoder
    encoder.runtime = runtime
    return encoder


def _use_vad_runtime(vad: Any, runtime: str) -> None:
    """Silero VAD as its package ships it for ONNX Runtime (same model, stepped the same way:
    the same speech segments on the test slice, probabilities within 1e-5), or back to its
    TorchScript model. ``VoiceActivity`` calls ``_model(chunk, rate)`` and ``_model.reset_states()``,
    which both models have."""
    if not hasattr(vad, "_model"):
        return
    if not hasattr(vad, "torch_model"):
        vad.torch_model = vad._model
    if runtime == "torch":
        vad._model = vad.torch_model
        return
    from silero_vad import load_silero_vad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vad._model = load_silero_vad(onnx=True)  # one thread: 32 ms steps are too small to share


def weights_digest(net: torch.nn.Module) -> str:
    """SHA-256 of every tensor the network computes with: the cache key of its graphs, right
    for any weights (a file that reuses another's encoder, a user's own network)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _torch_net(encoder: Any) -> Any:  # the modality's network class: TextAffectNet, a face or speech network
    net = encoder.head if encoder.modality == Modality.SPEECH else encoder.net
    return net.torch_net if isinstance(net, _StandIn) else net


def _np(tensor: torch.Tensor | np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    array = tensor.numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    return np.ascontiguousarray(array, dtype=dtype)
