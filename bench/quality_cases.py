"""The speech the quality checks are calibrated on: real recordings cut into phrases, espeak-ng
speech of the right and of the wrong text, other voices, noise, runaways and damaged clips.

Shared by ``bench/quality_calibration.py`` (which scores every case) and
``bench/quality_speed.py`` (which times the checks on the same audio). Everything is made offline:
the recordings come from ``../shared/data`` (see its README), the rest from ``espeak-ng`` and
numpy with fixed seeds, so two runs score the same audio.

Cut points in the recordings were read off faster-whisper's word timestamps once and are fixed
here (they fall in the pauses between phrases):

* ``jfk.flac``: "...can do for you," ends at 8.0 s; "ask what you can do for your country." follows.
* ``multilingual.mp3``: six English phrases of the MIT licence between 0 and 30.5 s (the reader
  leaves out the parenthetical "(the "Software")"), then another language from 32 to 55 s.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
RATE = 16_000

JFK_WORDS = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
JFK_PARTS = ((0.0, 8.0, "And so, my fellow Americans, ask not what your country can do for you,"),
             (8.0, 11.0, "ask what you can do for your country."))
MIT_PARTS = (
    (0.0, 4.95, "Permission is hereby granted, free of charge, to any person obtaining a copy of this software"),
    (4.95, 8.95, "and associated documentation files, to deal in the Software without restriction,"),
    (8.95, 14.75, "including without limitation the rights to use, copy, modify, merge, publish, distribute,"),
    (14.75, 20.1, "sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is"),
    (20.1, 25.1, "furnished to do so, subject to the following conditions: The above copyright notice and this permission"),
    (25.1, 30.5, "notice shall be included in all copies or substantial portions of the Software."),
)
OTHER_LANGUAGE = (32.0, 55.0)

#: Sentences for espeak-ng, each about as long as a Qwen3-TTS chunk.
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "Our train leaves the central station at half past seven tonight.",
    "Please remember to water the plants while I am away next week.",
    "The museum opens its new exhibition about ancient maps on Friday.",
    "He painted the small wooden boat a bright shade of yellow.",
    "A gentle rain fell over the quiet village throughout the night.",
    "They found an old letter hidden behind the kitchen cupboard.",
)


@dataclass
class Clip:
    """Mono float32 audio at :data:`RATE` with the words it says ("" when unknown)."""

    name: str
    samples: np.ndarray
    text: str = ""
    path: Path | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


@dataclass
class Materials:
    """Every clip the benches use, by name, plus the folder their WAV files live in."""

    folder: Path
    clips: dict[str, Clip] = field(default_factory=dict)

    def add(self, clip: Clip) -> Clip:
        import soundfile as sf

        clip.samples = np.asarray(clip.samples, dtype=np.float32)
        clip.path = self.folder / f"{clip.name}.wav"
        sf.write(clip.path, clip.samples, RATE, subtype="FLOAT")
        self.clips[clip.name] = clip
        return clip

    def __getitem__(self, name: str) -> Clip:
        return self.clips[name]


def espeak(text: str, voice: str = "en-us", speed: int = 175) -> np.ndarray:
    """espeak-ng speech of ``text`` at 16 kHz."""
    from voicebox import audio

    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", out.name, text],
                       check=True, capture_output=True)
        return audio.load_mono(out.name, RATE)


def noise(seconds: float, colour: str = "white", seed: int = 0, rms: float = 0.05) -> np.ndarray:
    """White or brown (integrated, speech-like low end) noise at ``rms``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, int(seconds * RATE))
    if colour == "brown":
        x = np.cumsum(x)
        x -= np.convolve(x, np.ones(1600) / 1600, mode="same")  # keep it from drifting
    return (x / np.sqrt(np.mean(x**2)) * rms).astype(np.float32)


def gibberish(seconds: float, seed: int = 0) -> np.ndarray:
    """A runaway: espeak-ng reading random syllables for about ``seconds``."""
    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bdgkmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
    words = [" ".join("".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(12))]
    out = espeak(words[0])
    while len(out) < seconds * RATE:
        out = np.concatenate([out, espeak(" ".join("".join(rng.choice(syllables, 2)) for _ in range(12)))])
    return out[: int(seconds * RATE)]


def cut(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * RATE): int(end * RATE)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def build(folder: Path | None = None) -> Materials:
    """Make every clip (a few seconds of espeak-ng work) and write each as a WAV file."""
    from voicebox import audio

    folder = Path(folder or tempfile.mkdtemp(prefix="quality-cases-"))
    folder.mkdir(parents=True, exist_ok=True)
    m = Materials(folder)
    jfk = audio.load_mono(DATA_DIR / "jfk.flac", RATE)
    mit = audio.load_mono(DATA_DIR / "multilingual.mp3", RATE)
    stereo, rate = audio.decode(DATA_DIR / "stereo_diarization.wav")
    m.add(Clip("jfk", jfk, JFK_WORDS))
    for i, (start, end, text) in enumerate(JFK_PARTS):
        m.add(Clip(f"jfk_part{i}", cut(jfk, start, end), text))
    for i, (start, end, text) in enumerate(MIT_PARTS):
        m.add(Clip(f"mit_part{i}", cut(mit, start, end), text))
    m.add(Clip("mit_english", cut(mit, 0.0, 30.5), " ".join(part[2] for part in MIT_PARTS)))
    m.add(Clip("mit_ref", cut(mit, 0.0, 14.75), " ".join(part[2] for part in MIT_PARTS[:3])))
    m.add(Clip("mit_other_language", cut(mit, *OTHER_LANGUAGE)))
    for channel in range(stereo.shape[1]):
        m.add(Clip(f"stereo_ch{channel}", audio.resample(stereo[:, channel], rate, RATE)))
    for i, sentence in enumerate(SENTENCES):
        m.add(Clip(f"espeak_{i}", espeak(sentence), sentence))
        m.add(Clip(f"espeak_f_{i}", espeak(sentence, "en-us+f3"), sentence))
    for speed in (80, 120, 260, 350, 450):
        m.add(Clip(f"espeak_speed{speed}", espeak(SENTENCES[0], speed=speed), SENTENCES[0]))
    for prefix in ("espeak", "espeak_f"):  # a voice's samples: the last three sentences
        m.add(Clip(f"{prefix}_ref", np.concatenate([m[f"{prefix}_{i}"].samples for i in (5, 6, 7)]),
                   " ".join(SENTENCES[5:8])))
    m.add(Clip("white_noise", noise(5.0, "white"), ""))
    m.add(Clip("brown_noise", noise(5.0, "brown", seed=1), ""))
    m.add(Clip("gibberish_20s", gibberish(20.0), ""))
    return m
