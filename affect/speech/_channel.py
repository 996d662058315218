"""Which channel a voice came through: wideband (a microphone, an app, VoIP at 16 kHz or more) or
narrowband (a telephone line: nothing above about 3.4 kHz, whatever rate the file is stored at).

The encoder's frames of one voice differ by channel more than by many emotions, so a head that
standardises frames by training statistics keeps one set per channel (speech model card, "channel
statistics") and reads each clip against the set of its channel. The channel is told from the
audio, not from the file's rate alone: a call recorded by a contact-centre platform is often
stored at 16 kHz or more with an empty upper band.

The rule: a source rate of 8 kHz or less is narrowband; otherwise the share of the speech's energy
above ``EDGE_HZ`` decides (``NARROWBAND_SHARE``). Measured on 80 clips of each training corpus:
telephone-band copies keep at most 3.3e-4 of their energy there, clean RAVDESS and EmoDB clips at
least 1.4e-3; some clean URDU talk-show clips hold less than 1e-4 (their broadcast was
narrowband already, and they are read as such). The recipe logs the split on every cached copy.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from affect.speech._audio import MODEL_RATE

Channel = Literal["wideband", "narrowband"]
CHANNELS: tuple[Channel, ...] = ("wideband", "narrowband")
EDGE_HZ = 3_800.0
NARROWBAND_SHARE = 6e-4  # energy share above EDGE_HZ under which a clip counts as a phone line
FRAME = 512  # 32 ms at 16 kHz: the share is averaged over such frames (a Welch estimate)


def upper_band_share(samples: np.ndarray, rate: int = MODEL_RATE) -> float:
    """The share of the signal's energy above ``EDGE_HZ`` (0 for silence or clips shorter than a frame)."""
    x = np.asarray(samples, dtype=np.float32)
    frames = len(x) // FRAME
    if frames == 0:
        return 0.0
    window = np.hanning(FRAME).astype(np.float32)
    power = (np.abs(np.fft.rfft(x[: frames * FRAME].reshape(frames, FRAME) * window, axis=1)) ** 2).sum(0)
    total = float(power.sum())
    if total <= 0.0:
        return 0.0
    upper = np.fft.rfftfreq(FRAME, 1.0 / rate) > EDGE_HZ
    return float(power[upper].sum()) / total


def detect_channel(samples: np.ndarray, source_rate: int, rate: int = MODEL_RATE) -> Channel:
    """``samples`` at ``rate`` (the speech, after resampling), from a file or array at ``source_rate``."""
    if source_rate <= 8_000:
        return "narrowband"
    return "narrowband" if upper_band_share(samples, rate) < NARROWBAND_SHARE else "wideband"
