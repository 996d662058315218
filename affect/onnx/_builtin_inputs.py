"""Inputs the library makes itself, for a parity check where the research test data is absent.

An export compares each graph with its PyTorch network. On a user's machine there is no MELD,
FER-2013 or RAVDESS: these inputs are made here instead, the same on every machine (fixed text,
seeded pictures and sounds) and without a network. They carry no gold labels: the check measures
how far the runtime moves the probabilities and whether the top label stays, not accuracy.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
SPEECH_CLIPS = 8
FACES = 32

# Four short conversations (text, speaker) read turn by turn with their past turns, as the
# library reads a conversation; varied feelings, lengths and punctuation, and speakers given,
# repeated and left out (the text graph's relation input takes all three).
DIALOGUES: tuple[tuple[tuple[str, str | None], ...], ...] = (
    (("Hi, I ordered a birthday present for my daughter two weeks ago.", "customer"),
     ("Thanks for reaching out! Let me look up your order.", "agent"),
     ("The tracking page has said 'processing' for ten days now.", "customer"),
     ("I'm sorry, it looks like the parcel was held at our warehouse.", "agent"),
     ("Are you serious? Her birthday is on Saturday!", "customer"),
     ("This is the third time this has happened. I am so done with you people.", "customer"),
     ("I understand. I've upgraded it to next-day delivery at no cost.", "agent"),
     ("Oh wow, really? That's amazing, thank you so much!", "customer")),
    (("Did you hear? Grandpa's in the hospital.", "Ana"),
     ("What? Since when?", "Ben"),
     ("Last night. They think it was a stroke.", "Ana"),
     ("Oh no. I... I don't know what to say.", "Ben"),
     ("I'm scared, Ben. He looked so small in that bed.", "Ana"),
     ("Hey. We'll go together tomorrow, okay?", "Ben")),
    (("ugh, the fridge smells like something died in it", None),
     ("That's disgusting. Who left the fish in there?", None),
     ("not me!! I don't even eat fish", None),
     ("Fine, I'll clean it. Again.", None),
     ("You're the best. Pizza's on me tonight.", None)),
    (("We won the contract!", "lead"),
     ("No way. The big one?", "dev"),
     ("The big one. Signed this morning.", "lead"),
     ("That's incredible news, well done everyone.", "dev"),
     ("Meeting at three to plan the first milestone.", "lead")),
)


def dialogues() -> list[list[tuple[str, str | None]]]:
    """The built-in conversations, 24 turns in all."""
    return [list(d) for d in DIALOGUES]


def synthetic_faces(count: int = FACES, seed: int = 0) -> np.ndarray:
    """``count`` gray 48x48 faces (uint8 ``[count, 48, 48]``) drawn from a seed: an oval face
    lit from one side, eyes, brows raised or knitted, a mouth smiling, frowning or open."""
    import cv2

    rng = np.random.default_rng(seed)
    faces = np.empty((count, 48, 48), np.uint8)
    for i in range(count):
        background = rng.uniform(20, 200)
        img = np.full((48, 48), background, np.float32)
        img += np.linspace(-1, 1, 48)[None, :] * rng.uniform(-30, 30)  # light from one side
        skin = float(rng.uniform(110, 220))
        cx, cy = 24 + rng.integers(-2, 3), 25 + rng.integers(-2, 3)
        cv2.ellipse(img, (int(cx), int(cy)), (int(rng.integers(15, 19)), int(rng.integers(19, 23))), 0, 0, 360, skin, -1)
        dark = skin * rng.uniform(0.2, 0.5)
        eye_y, eye_dx = int(cy - rng.integers(4, 7)), int(rng.integers(6, 9))
        eye_h = int(rng.integers(1, 4))  # narrowed to wide open
        lift = int(rng.integers(0, 4))  # brows raised
        tilt = int(rng.integers(-2, 3))  # their inner ends down (knitted, -) or up (worried, +)
        for side in (-1, 1):
            ex = int(cx + side * eye_dx)
            cv2.ellipse(img, (ex, eye_y), (3, eye_h), 0, 0, 360, dark, -1)
            cv2.line(img, (ex - side * 4, eye_y - 4 - lift - tilt), (ex + side * 4, eye_y - 4 - lift), dark, 1)
        cv2.line(img, (int(cx), eye_y + 2), (int(cx), int(cy + 3)), skin * 0.8, 1)  # the nose
        mouth_y, mouth_w = int(cy + rng.integers(8, 11)), int(rng.integers(4, 9))
        shape = rng.integers(3)
        if shape == 0:  # a smile
            cv2.ellipse(img, (int(cx), mouth_y - 2), (mouth_w, int(rng.integers(2, 5))), 0, 10, 170, dark, 1)
        elif shape == 1:  # a frown
            cv2.ellipse(img, (int(cx), mouth_y + 2), (mouth_w, int(rng.integers(2, 4))), 0, 190, 350, dark, 1)
        else:  # open
            cv2.ellipse(img, (int(cx), mouth_y), (int(rng.integers(2, 5)), int(rng.integers(2, 6))), 0, 0, 360, dark, -1)
        blurred = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 1.0))
        noisy = blurred + rng.normal(0, rng.uniform(2, 8), blurred.shape)  # sensor noise
        faces[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return faces


def synthetic_speech(count: int = SPEECH_CLIPS, seed: int = 0) -> list[np.ndarray]:
    """``count`` clips of float32 samples at 16 kHz, 1.5 to 3 s, shaped like speech: a voice whose
    pitch glides and wavers, its harmonics weighted by three formants that move syllable by
    syllable, syllables of about 4 a second with short pauses, and a little breath noise."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(count):
        n = int(SAMPLE_RATE * rng.uniform(1.5, 3.0))
        t = np.arange(n) / SAMPLE_RATE
        f0_base = rng.uniform(90, 240)  # low male to high female voices
        f0 = f0_base * (1 + rng.uniform(-0.2, 0.2) * t / t[-1]) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        syllable_rate = rng.uniform(3, 5.5)
        syllable = np.floor(t * syllable_rate).astype(int)
        formants = rng.uniform([300, 900, 2200], [850, 2300, 3200], size=(syllable.max() + 1, 3))
        signal = np.zeros(n)
        for k in range(1, int(4000 // f0_base) + 1):
            freq = k * f0
            gain = sum(np.exp(-0.5 * ((freq - formants[syllable, j]) / (80 + 40 * j)) ** 2) / (j + 1) for j in range(3))
            signal += (gain + 0.02) * np.sin(k * phase) / k ** 0.5
        envelope = np.sin(np.pi * ((t * syllable_rate) % 1.0)) ** 2
        envelope *= rng.uniform(0, 1, syllable.max() + 1)[syllable] > 0.15  # a pause now and then
        signal = signal * envelope + rng.normal(0, 0.01, n)
        signal *= rng.uniform(0.1, 0.5) / np.abs(signal).max()
        clips.append(signal.astype(np.float32))
    return clips
