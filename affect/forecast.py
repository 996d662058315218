"""Emotion forecast: how each speaker's *next* turn is likely to feel.

A small GRU reads the conversation's recent readings from one speaker's point of view
(``affect.forecast_features``) and gives two probabilities for that speaker's next turn: that it
will be negative in sentiment, and that it will be angry. It runs after every turn with a
reading, for every speaker in the window, in one batched call of a few thousand
multiply-adds, so its cost beside the encoders is negligible (``benchmarks.speed``). Trained by
``recipes/forecast`` on MELD train dialogues with the text model's out-of-fold outputs as
inputs; see ``affect/models/forecast/MODEL_CARD.md`` for what it was measured to do and where it
was never trained (speech and face readings reach it only through the fused answer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from affect._errors import ModelLoadError
from affect._weights import Weights, WeightsEnum
from affect.forecast_features import STEP_FEATURES, TARGET_FEATURES, Reading, step_features, target_features, targets
from affect.results import SpeakerForecast

OUTPUTS = ("negative", "anger")


class ForecastNet(nn.Module):
    """GRU over the window's rows, then a linear head over its last state and the target's features."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = hidden
        self.gru = nn.GRU(STEP_FEATURES, hidden, batch_first=True)
        self.head = nn.Linear(hidden + TARGET_FEATURES, len(OUTPUTS))

    def forward(self, steps: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``steps [B, T, F]`` (rows after ``lengths`` are padding), ``target [B, G]`` -> logits ``[B, 2]``."""
        out, _ = self.gru(steps)
        last = out[torch.arange(out.shape[0]), (lengths - 1).clamp(min=0)]
        return self.head(torch.cat([last, target], dim=-1))


def batch_inputs(windows: Sequence[tuple[Sequence[Reading], str | None]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded tensors for many (window, target) pairs, as ``ForecastNet`` takes them."""
    longest = max((len(w) for w, _ in windows), default=1)
    steps = np.zeros((len(windows), max(longest, 1), STEP_FEATURES), dtype=np.float32)
    target = np.zeros((len(windows), TARGET_FEATURES), dtype=np.float32)
    lengths = np.zeros(len(windows), dtype=np.int64)
    for i, (window, who) in enumerate(windows):
        steps[i, : len(window)] = step_features(window, who)
        target[i] = target_features(window, who)
        lengths[i] = len(window)
    return torch.from_numpy(steps), torch.from_numpy(lengths), torch.from_numpy(target)


def _meld_test(negative: float, anger: float, *, persistence: tuple[float, float],
               trend: tuple[float, float]) -> dict[str, float]:
    """MELD test AUROCs (``python -m benchmarks.accuracy forecast``, the entry's ``metrics_text_model``
    with its default prior reading the turns) of the forecast, beside the baselines of the same run
    (negative, anger)."""
    return {"meld_test_forecast_negative_auroc": negative, "meld_test_persistence_negative_auroc": persistence[0],
            "meld_test_trend_negative_auroc": trend[0], "meld_test_forecast_anger_auroc": anger,
            "meld_test_persistence_anger_auroc": persistence[1], "meld_test_trend_anger_auroc": trend[1]}


# What every version of the GRU shares; each entry adds its version, readings and figures.
_GRU_META = {
    "name": "forecast-gru",
    "modality": "forecast",
    "categories": list(OUTPUTS),
    "num_params": 4698,  # GRU(14 -> 32) and a linear head over it and the target's 12 numbers
    "recipe": "recipes/forecast",
    "licence": "research use only (MELD GPL-3.0)",
    "window": 16,
    "card": "affect/models/forecast/MODEL_CARD.md",
}


class ForecastWeights(WeightsEnum):
    GRU_MELD_V1 = Weights(
        file="forecast/forecast_gru_v1.safetensors",
        sha256="cc34db3b3e9dadd09963df75f8e2e6e51d79b70da4698c29dfbd539aa053c80a",
        meta={**_GRU_META, "version": "1",
              "trained_on": "MELD train dialogues (the text model's out-of-fold readings; chosen on MELD dev)",
              "readings_prior": "conversational",  # the text prior of the readings it learnt from
              "metrics_text_model": "text-minilm-multicorpus@2",
              "metrics": _meld_test(0.625, 0.681, persistence=(0.593, 0.625), trend=(0.548, 0.632))},
    )
    GRU_MELD_V2 = Weights(
        file="forecast/forecast_gru_v2.safetensors",
        sha256="8a7c45ddf74b1bf2833c2c47ac2bcfd46daee1899ff10096fbf702a0b45f1255",
        meta={**_GRU_META, "version": "2",
              "trained_on": "MELD train dialogues (the text model's out-of-fold readings under the library's "
                            "default prior; chosen on MELD dev)",
              "readings_prior": "trained",
              # benchmarks/results/accuracy-forecast.md (2026-12-03, the default text@5 reading the turns;
              # text@2 read 0.624 / 0.681)
              "metrics_text_model": "text-minilm-multicorpus@5",
              "metrics": _meld_test(0.626, 0.682, persistence=(0.592, 0.628), trend=(0.550, 0.633))},
    )
    DEFAULT = GRU_MELD_V2


def load_forecast_net(path: Path) -> tuple[ForecastNet, dict]:
    """The network and its header (``window``, ``hidden``, training summary) from a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k).float() for k in fh.keys()}
        net = ForecastNet(hidden=int(header["hidden"]))
        net.load_state_dict(tensors, strict=True)
    except Exception as exc:  # a damaged or foreign file: several exception types
        raise ModelLoadError(f"cannot read forecast weights {path}: {exc}") from exc
    net.eval()
    return net, {"window": int(header["window"]), **json.loads(header.get("affect_meta", "{}"))}


def save_forecast_net(net: ForecastNet, path: Path, window: int, meta: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(path), metadata={"hidden": str(net.hidden), "window": str(window), "affect_meta": json.dumps(meta)})


class _NumpyForecast:
    """``ForecastNet``'s forward pass in numpy, for one window shared by every target (no padding).

    At run time the network is tiny and called once per turn; torch's thread pool costs more
    than the arithmetic (tens of milliseconds when the cores are busy), numpy's small products
    do not. ``tests/test_forecast.py`` checks that both give the same answers."""

    def __init__(self, net: ForecastNet) -> None:
        state = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
        self.w_ih, self.b_ih = state["gru.weight_ih_l0"].T.copy(), state["gru.bias_ih_l0"]
        self.w_hh, self.b_hh = state["gru.weight_hh_l0"].T.copy(), state["gru.bias_hh_l0"]
        self.w_out, self.b_out = state["head.weight"].T.copy(), state["head.bias"]
        self.hidden = net.hidden

    def __call__(self, steps: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``steps [B, T, F]``, ``target [B, G]`` -> probabilities ``[B, 2]``."""
        hid = self.hidden
        projected = steps.astype(np.float64) @ self.w_ih + self.b_ih  # [B, T, 3H]
        h = np.zeros((steps.shape[0], hid))
        for t in range(steps.shape[1]):
            x, g = projected[:, t], h @ self.w_hh + self.b_hh
            r = 1.0 / (1.0 + np.exp(-(x[:, :hid] + g[:, :hid])))
            z = 1.0 / (1.0 + np.exp(-(x[:, hid:2 * hid] + g[:, hid:2 * hid])))
            n = np.tanh(x[:, 2 * hid:] + r * g[:, 2 * hid:])
            h = (1.0 - z) * n + z * h
        logits = np.concatenate([h, target.astype(np.float64)], axis=1) @ self.w_out + self.b_out
        return 1.0 / (1.0 + np.exp(-logits))


class Forecaster:
    """Next-turn P(negative) and P(anger) for every speaker of a conversation's recent turns.

    >>> forecaster = Forecaster()
    >>> forecaster.forecast(readings)   # readings: the conversation's recent Reading list
    (SpeakerForecast(speaker='caller', negative=0.41, anger=0.18), ...)
    """

    def __init__(self, *, weights: ForecastWeights | str | None = None) -> None:
        self.weights = ForecastWeights.resolve(weights)
        self.net, self.train_meta = load_forecast_net(self.weights.value.verified_path())
        self.window: int = self.train_meta["window"]
        self.model_id = self.weights.value.id
        self.readings_prior: str = self.weights.value.meta.get("readings_prior", "trained")
        self._run = _NumpyForecast(self.net)

    @property
    def learnt_from_trained_readings(self) -> bool:
        """Whether its training readings were made under the text model's own prior (forecast-gru@1's
        were under "conversational": it gets the turns as reported)."""
        return self.readings_prior == "trained"

    def forecast(self, readings: Sequence[Reading]) -> tuple[SpeakerForecast, ...]:
        """One forecast per speaker with a reading among the last ``window`` readings, most recent first."""
        window = list(readings)[-self.window:]
        who = targets(window)
        if not who:
            return ()
        steps = np.stack([step_features(window, w) for w in who])
        probs = self._run(steps, np.stack([target_features(window, w) for w in who]))
        return tuple(SpeakerForecast(w, float(p[0]), float(p[1])) for w, p in zip(who, probs))
