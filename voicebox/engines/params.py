"""Generation settings: validated sampling parameters and named presets.

Kept apart from the engine so the UI, the REST API and the engine share one definition of what
is allowed, and every refusal reads the same.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import InvalidInput

TEXT_MAX_CHARS = 5000
SEED_MAX = 2**31 - 1

#: Presets map a mood to sampling parameters. "Balanced" is the model's own default.
PRESETS: dict[str, dict[str, float | int]] = {
    "Stable": {"temperature": 0.6, "top_k": 30, "top_p": 0.85, "repetition_penalty": 1.1},
    "Balanced": {"temperature": 0.9, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.05},
    "Expressive": {"temperature": 1.1, "top_k": 80, "top_p": 1.0, "repetition_penalty": 1.0},
}
DEFAULT_PRESET = "Balanced"


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters for one generation; ``seed`` is always concrete once resolved."""

    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.05
    seed: int | None = None
    do_sample: bool = True
    #: Hard cap on frames per chunk; ``None`` derives it from the chunk's length.
    max_new_tokens: int | None = None

    def with_seed(self) -> "GenerationParams":
        """A copy with a random seed filled in when none was given (it is always recorded)."""
        return self if self.seed is not None else replace(self, seed=secrets.randbelow(SEED_MAX))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sampling_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``qwen_tts`` generation (talker and sub-talker alike)."""
        return {
            "do_sample": self.do_sample,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
            "subtalker_dosample": self.do_sample,
            "subtalker_temperature": self.temperature,
            "subtalker_top_k": self.top_k,
            "subtalker_top_p": self.top_p,
        }


def chunk_seed(seed: int, index: int, attempt: int = 0) -> int:
    """The seed of chunk ``index`` of a take seeded ``seed`` (``attempt`` > 0: a re-take of it).

    Chunk 0's first attempt uses the take's own seed, so a one-sentence take is reproduced by the
    seed shown in its history. The others are derived by hashing, which, unlike adding an offset,
    never gives two chunks (or a chunk and a re-take) the same seed. Each chunk is seeded on its
    own, so a take comes out the same however other requests interleave with it.
    """
    if index == 0 and attempt == 0:
        return int(seed)
    digest = hashlib.sha256(f"{int(seed)}:{index}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_MAX


def _number(name: str, value: Any, low: float, high: float, integer: bool = False) -> float | int:
    try:
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise InvalidInput(f"{name} must be {kind} from {low:g} to {high:g}.") from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} is {number:g}; use a value from {low:g} to {high:g}.")
    return number


def make_params(
    preset: str | None = None,
    *,
    temperature: Any = None,
    top_k: Any = None,
    top_p: Any = None,
    repetition_penalty: Any = None,
    seed: Any = None,
    max_new_tokens: Any = None,
    do_sample: bool = True,
) -> GenerationParams:
    """Start from a preset, apply explicit values, validate everything.

    Raises:
        InvalidInput: an unknown preset or a value out of range, naming the field and the range.
    """
    name = preset or DEFAULT_PRESET
    match = next((p for p in PRESETS if p.lower() == str(name).lower()), None)
    if match is None:
        raise InvalidInput(f"Unknown preset {name!r}; use one of {', '.join(PRESETS)}.")
    base = dict(PRESETS[match])
    explicit = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "repetition_penalty": repetition_penalty}
    base.update({k: v for k, v in explicit.items() if v is not None and v != ""})
    return GenerationParams(
        temperature=float(_number("temperature", base["temperature"], 0.05, 2.0)),
        top_k=int(_number("top_k", base["top_k"], 1, 500, integer=True)),
        top_p=float(_number("top_p", base["top_p"], 0.05, 1.0)),
        repetition_penalty=float(_number("repetition_penalty", base["repetition_penalty"], 1.0, 2.0)),
        seed=None if seed is None or seed == "" else int(_number("seed", seed, 0, SEED_MAX, integer=True)),
        do_sample=bool(do_sample),
        max_new_tokens=None
        if max_new_tokens is None
        else int(_number("max_new_tokens", max_new_tokens, 2, 16384, integer=True)),
    )


def check_text(text: Any) -> str:
    """The text to speak, stripped; 1 to 5,000 characters."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("Type some text to speak.")
    cleaned = text.strip()
    if len(cleaned) > TEXT_MAX_CHARS:
        raise InvalidInput(
            f"The text has {len(cleaned):,} characters; the limit is {TEXT_MAX_CHARS:,}. Split it into parts."
        )
    return cleaned
