"""Effects on a finished take: one typed chain of settings, the presets, and the signal path.

**Why a record and not a dict.** An :class:`EffectChain` is stored with a take (and with a profile,
as its default), travels through REST, the Gradio API and the UI, and is the key of the
processed audio's cache. A frozen dataclass that checks every value when it is made means a bad
value is refused once, with a sentence a person can act on ("Speed must be from 0.5 to 2 (got
3).") wherever it came from, and a stored chain is always one the signal path can run. It is JSON
as :meth:`EffectChain.to_dict` writes it (every setting explicit, so a take sounds the same after
a preset is retuned); nothing is pickled.

**Why these libraries.** Spotify's ``pedalboard`` (JUCE underneath) does the studio work: the
Rubber Band time stretcher for pitch and speed (formants kept, so a pitched voice stays a voice),
shelf and peak EQ, compressor, tanh distortion, delay, Freeverb and a limiter. Its high- and
low-pass filters are first order (6 dB per octave), which leaves most of a voice's fundamental in
a "telephone" band, so the two cuts are 8th-order Butterworth filters from SciPy (48 dB per
octave, -3 dB at the frequency named: the textbook meaning of a cut-off).

The chain runs in a fixed order, as a hardware rack would: pitch and speed, EQ, compressor,
distortion, cuts (so the harmonics distortion adds, and the pumping of the compressor, are cut
too: a compressor after the cuts brought 10 dB of hiss back above a telephone band), echo, reverb,
gain, and, only where the result would peak above -1 dBFS, a limiter, so no setting can clip the
16-bit file. An echo or reverb lets its tail ring out past the end of the speech (the take gets
longer), then the silence after it is trimmed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from .errors import InvalidInput

#: Bump when the signal path changes: cached processed audio is then made again.
EFFECTS_VERSION = 1
#: The chain of a take that has none, and of a request that asks for none.
NONE = "none"
CUSTOM = "custom"
#: Butterworth order of the low and high cuts (6 dB per octave per order).
CUT_ORDER = 8
#: Below this (dBFS) the ringing tail of an echo or reverb counts as silence and is trimmed.
TAIL_FLOOR_DB = -60.0
LIMIT_DB = -1.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One setting's label, unit, range and neutral value; ``off_at_zero``: 0 switches it off
    (a cut, a compressor threshold), any other value must lie in the range."""

    label: str
    unit: str
    low: float
    high: float
    neutral: float
    off_at_zero: bool = False
    help: str = ""

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"{self.label} ({name}) must be a number, not {value!r}.")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInput(f"{self.label} ({name}) must be a finite number.")
        if self.off_at_zero and number == 0:
            return 0.0
        if not self.low <= number <= self.high:
            unit = "×" if self.unit == "x" else (f" {self.unit}" if self.unit[:1].isalpha() else self.unit)
            off = "0 (off) or " if self.off_at_zero else ""
            raise InvalidInput(f"{self.label} ({name}) must be {off}from {self.low:g} to {self.high:g}{unit} "
                               f"(got {number:g}).")
        return number


#: Every setting of a chain, in the order the UI shows them.
SETTINGS: dict[str, Setting] = {
    "gain_db": Setting("Gain", "dB", -24, 24, 0.0, help="louder or quieter, after everything else"),
    "low_cut_hz": Setting("Low cut", "Hz", 20, 4000, 0.0, True, "remove what lies below (0: off)"),
    "high_cut_hz": Setting("High cut", "Hz", 1000, 11000, 0.0, True, "remove what lies above (0: off)"),
    "bass_db": Setting("Bass", "dB", -18, 18, 0.0, help="low shelf at 200 Hz"),
    "mid_db": Setting("Middle", "dB", -18, 18, 0.0, help="peak at 1.5 kHz"),
    "treble_db": Setting("Treble", "dB", -18, 18, 0.0, help="high shelf at 4 kHz"),
    "compressor_db": Setting("Compressor threshold", "dBFS", -60, -1, 0.0, True, "0: off"),
    "compressor_ratio": Setting("Compressor ratio", ":1", 1, 20, 4.0),
    "distortion_db": Setting("Distortion drive", "dB", 0, 40, 0.0),
    "echo_ms": Setting("Echo delay", "ms", 1, 1000, 0.0, True, "short delays sound metallic (0: off)"),
    "echo_feedback": Setting("Echo feedback", "", 0, 0.9, 0.3),
    "echo_mix": Setting("Echo mix", "", 0, 1, 0.3),
    "reverb_size": Setting("Reverb room size", "", 0, 1, 0.5),
    "reverb_mix": Setting("Reverb mix", "", 0, 1, 0.0, help="0: no reverb"),
    "pitch_semitones": Setting("Pitch", "semitones", -12, 12, 0.0),
    "speed": Setting("Speed", "x", 0.5, 2.0, 1.0, help="tempo; the pitch stays"),
}


@dataclass(frozen=True)
class EffectChain:
    """The effect settings of one take (or a profile's default), checked when made.

    ``preset`` names where the values came from: a key of :data:`PRESETS`, ``custom`` or
    ``none``; the values themselves are always explicit. Build one with :func:`parse` (a preset
    name, a mapping or JSON text) or :meth:`from_dict`.
    """

    preset: str = CUSTOM
    gain_db: float = 0.0
    low_cut_hz: float = 0.0
    high_cut_hz: float = 0.0
    bass_db: float = 0.0
    mid_db: float = 0.0
    treble_db: float = 0.0
    compressor_db: float = 0.0
    compressor_ratio: float = 4.0
    distortion_db: float = 0.0
    echo_ms: float = 0.0
    echo_feedback: float = 0.3
    echo_mix: float = 0.3
    reverb_size: float = 0.5
    reverb_mix: float = 0.0
    pitch_semitones: float = 0.0
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.preset not in (*PRESET_NAMES, CUSTOM, NONE):
            raise InvalidInput(f"Unknown effect preset {self.preset!r}; use one of {', '.join(preset_keys())}.")
        for name, setting in SETTINGS.items():
            object.__setattr__(self, name, setting.check(name, getattr(self, name)))
        if self.low_cut_hz and self.high_cut_hz and self.low_cut_hz >= self.high_cut_hz:
            raise InvalidInput(f"The low cut ({self.low_cut_hz:g} Hz) must be below the high cut "
                               f"({self.high_cut_hz:g} Hz), or nothing would be left to hear.")

    @property
    def is_none(self) -> bool:
        """True when the chain changes nothing (then a take keeps its clean audio)."""
        quiet = {"echo_ms": not (self.echo_ms and self.echo_mix)}
        return all(quiet.get(n, getattr(self, n) == s.neutral) for n, s in SETTINGS.items() if n not in NEUTRAL_ALONE)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EffectChain:
        """A chain from a mapping: ``preset`` (optional) gives the starting values, the other keys
        change them (the chain is then ``custom``). Unknown keys are refused by name."""
        if not isinstance(data, Mapping):
            raise InvalidInput("Effects must be a preset name or an object of settings.")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidInput(f"Unknown effect setting {unknown[0]!r}; the settings are preset, "
                               f"{', '.join(SETTINGS)}.")
        base = by_name(data["preset"]) if data.get("preset") not in (None, "", CUSTOM) else cls()
        changes = {k: v for k, v in data.items() if k != "preset"}
        if not changes:
            return base
        changed = replace(base, preset=CUSTOM, **changes)
        return changed if changed.values() != base.values() else base

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, n) for n in SETTINGS)

    def key(self) -> str:
        """A short hash of the settings and the signal path's version (names processed files)."""
        text = json.dumps([EFFECTS_VERSION, self.values()])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def title(self) -> str:
        """One or two words: the preset's name, "Custom" or "None"."""
        if self.is_none:
            return "None"
        if self.preset in PRESETS and PRESETS[self.preset].values() == self.values():
            return PRESET_LABELS[self.preset]
        return "Custom"

    def label(self) -> str:
        """What a person reads: "Telephone", or "Custom: pitch +3 semitones, reverb mix 0.4"."""
        if self.title() != "Custom":
            return self.title()
        changed = [f"{s.label.lower()} {_shown(getattr(self, n), s)}" for n, s in SETTINGS.items()
                   if getattr(self, n) != s.neutral and n not in NEUTRAL_ALONE]
        return "Custom: " + ", ".join(changed)


#: Settings that change nothing on their own (the compressor ratio without a threshold, ...).
NEUTRAL_ALONE = frozenset({"compressor_ratio", "echo_feedback", "echo_mix", "reverb_size"})


def _shown(value: float, setting: Setting) -> str:
    signed = setting.unit in ("dB", "semitones") and value > 0
    unit = "×" if setting.unit == "x" else (f" {setting.unit}" if setting.unit else "")
    return f"{'+' if signed else ''}{value:g}{unit}"


#: The presets, by key; each is a full chain.
PRESETS: dict[str, EffectChain] = {}
PRESET_LABELS = {
    "radio": "Radio", "telephone": "Telephone", "megaphone": "Megaphone", "robot": "Robot",
    "cathedral": "Cathedral reverb", "pitch_up": "Pitch up", "pitch_down": "Pitch down",
}
PRESET_NAMES = tuple(PRESET_LABELS)
PRESETS.update({
    # an AM broadcast: a narrow band, pushed middle, squeezed and a little driven
    "radio": EffectChain("radio", low_cut_hz=150, high_cut_hz=5000, mid_db=5, compressor_db=-24,
                         compressor_ratio=4, distortion_db=6, gain_db=-2),
    # a phone line carries 300-3400 Hz: the cuts sit inside that band, so that by its edges the
    # voice is well down (20 dB at 300 Hz, 9 dB at 3.4 kHz and falling 48 dB an octave), as on a line
    "telephone": EffectChain("telephone", low_cut_hz=400, high_cut_hz=3000, compressor_db=-20,
                             compressor_ratio=6, distortion_db=4),
    # a horn's narrow band, heavily overdriven
    "megaphone": EffectChain("megaphone", low_cut_hz=500, high_cut_hz=4000, mid_db=6, compressor_db=-18,
                             compressor_ratio=8, distortion_db=22, gain_db=-6),
    # a short echo with strong feedback is a comb filter: the metallic ring of a robot's voice
    "robot": EffectChain("robot", echo_ms=9, echo_feedback=0.7, echo_mix=0.55, pitch_semitones=-2,
                         low_cut_hz=120, gain_db=-3),
    "cathedral": EffectChain("cathedral", reverb_size=0.97, reverb_mix=0.45, low_cut_hz=80, gain_db=-1),
    "pitch_up": EffectChain("pitch_up", pitch_semitones=4),
    "pitch_down": EffectChain("pitch_down", pitch_semitones=-4),
})
NO_EFFECT = EffectChain(NONE)


def preset_keys() -> list[str]:
    return [NONE, *PRESET_NAMES, CUSTOM]


def by_name(name: Any) -> EffectChain:
    """A preset by key or label, forgiving case, spaces and dashes ("Pitch up", "pitch-up")."""
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    key = {"cathedral_reverb": "cathedral", "off": NONE}.get(key, key)
    if key == NONE:
        return NO_EFFECT
    if key not in PRESETS:
        raise InvalidInput(f"Unknown effect preset {name!r}; use one of {', '.join(preset_keys()[:-1])}, "
                           "or an object of settings.")
    return PRESETS[key]


def parse(value: Any) -> EffectChain | None:
    """What a request says about effects: ``None`` (or ``""``) when it says nothing (a voice's
    default then applies), else a chain; ``"none"`` is the chain that changes nothing.

    Accepts a chain, a preset name, a mapping of settings, or that mapping as JSON text (the
    Gradio API passes text)."""
    if value is None or isinstance(value, EffectChain):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidInput("Effects text starts with '{' but is not valid JSON.") from None
        else:
            return by_name(text)
    return EffectChain.from_dict(value)


def stored(value: Any) -> EffectChain | None:
    """A chain kept in a record (``None``, ``{}`` or a chain that changes nothing: no effect).

    A stored chain that no longer passes the checks (limits tightened since) is dropped with a
    warning rather than making the whole record unreadable: the clean take is still there."""
    try:
        chain = parse(value) if value else None
    except InvalidInput as exc:
        log.warning("ignoring a stored effect chain that is no longer valid: %s", exc.message)
        return None
    return None if chain is None or chain.is_none else chain


def for_take(requested: EffectChain | None, default: EffectChain | None) -> EffectChain | None:
    """The chain a new take gets: what its request says, else its voice's default; ``None`` when
    that changes nothing."""
    chosen = requested if requested is not None else default
    return None if chosen is None or chosen.is_none else chosen


# ---- the signal path ---------------------------------------------------------------------------
def apply(chain: EffectChain, samples: np.ndarray, rate: int) -> np.ndarray:
    """The take's mono float audio through ``chain``; the same input always gives the same output."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if chain.is_none or not len(x):
        return x.copy()
    import pedalboard as pb

    if chain.speed != 1.0 or chain.pitch_semitones:
        x = pb.time_stretch(x[None, :], rate, stretch_factor=chain.speed,
                            pitch_shift_in_semitones=chain.pitch_semitones)[0]
    front = [pb.LowShelfFilter(200, chain.bass_db), pb.PeakFilter(1500, chain.mid_db, 0.9),
             pb.HighShelfFilter(4000, chain.treble_db)]
    if chain.compressor_db:
        front.append(pb.Compressor(chain.compressor_db, chain.compressor_ratio, attack_ms=5, release_ms=120))
    if chain.distortion_db:
        front.append(pb.Distortion(chain.distortion_db))
    x = pb.Pedalboard(front)(x[None, :], rate)[0]
    x = _cuts(x, rate, chain.low_cut_hz, chain.high_cut_hz)
    speech_end = len(x)
    tail = tail_seconds(chain)
    if tail:
        x = np.concatenate([x, np.zeros(int(tail * rate), dtype=np.float32)])
    back: list[Any] = []
    if chain.echo_ms and chain.echo_mix:
        back.append(pb.Delay(chain.echo_ms / 1000, chain.echo_feedback, chain.echo_mix))
    if chain.reverb_mix:
        back.append(pb.Reverb(room_size=chain.reverb_size, damping=0.35, wet_level=chain.reverb_mix,
                              dry_level=1 - chain.reverb_mix / 2, width=0.0))
    x = pb.Pedalboard([*back, pb.Gain(chain.gain_db)])(x[None, :], rate)[0]
    x = _trim_tail(x, speech_end, rate)
    ceiling = 10 ** (LIMIT_DB / 20)
    if len(x) and float(np.max(np.abs(x))) > ceiling:  # only then: a limiter adds a little hash of its own
        x = pb.Limiter(threshold_db=LIMIT_DB, release_ms=100)(x[None, :], rate)[0]
        x = x * (ceiling / max(float(np.max(np.abs(x))), ceiling))  # its clipper stops at 0 dBFS, not -1
    return x.astype(np.float32)


def tail_seconds(chain: EffectChain) -> float:
    """How long an echo or reverb may ring on after the speech (it is trimmed where it fades)."""
    seconds = 0.0
    if chain.echo_ms and chain.echo_mix:  # repeats until they are 60 dB down
        repeats = math.log(1e-3) / math.log(max(chain.echo_feedback, 1e-3))
        seconds = min(6.0, chain.echo_ms / 1000 * (repeats + 1))
    if chain.reverb_mix:
        seconds = max(seconds, 0.5 + 4.5 * chain.reverb_size)
    return seconds


def _cuts(x: np.ndarray, rate: int, low: float, high: float) -> np.ndarray:
    from scipy import signal

    nyquist = rate / 2
    if low:
        x = signal.sosfilt(signal.butter(CUT_ORDER, low, "highpass", fs=rate, output="sos"), x)
    if high and high < nyquist * 0.98:
        x = signal.sosfilt(signal.butter(CUT_ORDER, high, "lowpass", fs=rate, output="sos"), x)
    return np.asarray(x, dtype=np.float32)


def _trim_tail(x: np.ndarray, speech_end: int, rate: int) -> np.ndarray:
    """Cut the padded tail where it has faded below :data:`TAIL_FLOOR_DB` (plus 50 ms)."""
    if len(x) <= speech_end:
        return x
    loud = np.flatnonzero(np.abs(x[speech_end:]) > 10 ** (TAIL_FLOOR_DB / 20))
    end = speech_end + (int(loud[-1]) + 1 if len(loud) else 0) + int(0.05 * rate)
    return x[:min(end, len(x))]


def describe() -> dict[str, Any]:
    """The presets and every setting's range, for clients (``GET /effects``, the Gradio API)."""
    return {
        "presets": {key: {"label": PRESET_LABELS[key], **chain.to_dict()} for key, chain in PRESETS.items()},
        "settings": {name: {"label": s.label, "unit": s.unit, "min": s.low, "max": s.high, "neutral": s.neutral,
                            "zero_is_off": s.off_at_zero, "help": s.help} for name, s in SETTINGS.items()},
    }
