"""Voice design: describe a voice in words, hear a few takes, keep one as a profile (issue #18).

Qwen3-TTS's VoiceDesign model speaks a sample text in a voice made from a description ("a warm,
low female voice in her fifties, calm, slight British accent"). A described voice drifts from
text to text, so voicebox uses it the way that keeps a voice stable: **design, then clone**. The
person compares a few takes of the sample text (one batch, each row with its own seed), saves the
one they like as a profile — that take becomes the profile's first sample with the sample text as
its transcript, and the description becomes the profile's description — and from then on the Base
model clones it like any recorded voice.

The VoiceDesign checkpoint (``VOICEBOX_DESIGN_MODEL``) is loaded on first use by its own engine
(:class:`DesignEngine`: the same loading, fast frame loop and decoder as cloning, with the
VoiceDesign prompt builder). At most one big model is kept in memory: designing unloads the
cloning model first, and on a CPU the design model is unloaded again after each design (a laptop
should not hold two 1.7B models; loading is short next to generating there).

Takes wait under the owner's folder (``designs/<id>/``) until one is saved or the design is
forgotten (the oldest beyond :data:`KEEP` per server, or "Delete everything"); another owner's
design id answers like a missing one.
"""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import audio
from .atomic import atomic_write_bytes
from .engines.params import GenerationParams
from .engines.tts import TTSEngine
from .errors import InvalidInput, ModelUnavailable, NotFound
from .ids import new_id
from .owners import root as owner_root
from .speech import ChunkResult, SpeechRequest

#: How many designs the server keeps (all owners together); older ones are forgotten with their takes.
KEEP = 64
MAX_TAKES = 4
MAX_DESCRIPTION = 500
MAX_TEXT = 300
#: What the takes say when the person gives no sample text: a sentence with varied sounds.
DEFAULT_TEXT = "Hello! This is how I sound when I read a story aloud, calm and clear, for as long as you like."
DESIGN_FOLDER = "designs"


class DesignEngine(TTSEngine):
    """The speech engine over a VoiceDesign checkpoint (it refuses any other family)."""

    name = "qwen3-tts-voice-design"
    variant = "voice_design"


@dataclass(frozen=True)
class DesignTake:
    """One take of a design: its file, the seed that remakes it, and its length."""

    index: int
    seed: int
    path: Path
    duration: float
    hit_cap: bool = False


@dataclass
class Design:
    """A described voice and its takes, waiting for the person to keep one."""

    id: str
    owner: str
    description: str
    text: str
    language: str
    takes: list[DesignTake] = field(default_factory=list)

    def take(self, number: Any) -> DesignTake:
        """Take ``number``, counted from 1 as the page and the API show them."""
        try:
            index = int(number) - 1
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(self.takes):
            raise InvalidInput(f"Choose a take between 1 and {len(self.takes)}.")
        return self.takes[index]


def clean_words(value: Any, limit: int, what: str) -> str:
    """``value`` on one line, refused when empty or longer than ``limit`` characters."""
    words = " ".join(str(value or "").split())
    if len(words) > limit:
        raise InvalidInput(f"The {what} is {len(words)} characters long; keep it under {limit}.")
    return words


class VoiceDesigner:
    """Designs of every owner, and the engine that makes them (``None`` when not configured)."""

    def __init__(self, studio: Any, engine: TTSEngine | None = None) -> None:
        self.studio = studio
        settings = studio.settings
        source = settings.design_model
        self.engine = engine if engine is not None else (
            DesignEngine({"1.7B": source}, device=settings.device, lock=studio.model_lock,
                         max_frames=settings.max_frames, quantize=settings.cpu_int8, cuda_graphs="off",
                         precision_memory=settings.precision_memory)
            if source else None)
        self._designs: OrderedDict[str, Design] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.engine is not None

    def _engine(self) -> TTSEngine:
        if self.engine is None:
            raise ModelUnavailable("Voice design is off on this server (VOICEBOX_DESIGN_MODEL is empty).")
        return self.engine

    # ---- designing ----------------------------------------------------------------------------
    def design(self, description: Any, text: Any = "", language: str = "auto", takes: Any = 3,
               seed: Any = None, *, owner: str = "", user: str | None = None) -> Design:
        """Speak ``text`` (or :data:`DEFAULT_TEXT`) in the voice ``description`` describes,
        ``takes`` times with different seeds, in one batch; the takes wait for :meth:`save`."""
        description = clean_words(description, MAX_DESCRIPTION, "description")
        if not description:
            raise InvalidInput("Describe the voice in words first, e.g. “a warm, low voice, calm and slow”.")
        text = clean_words(text, MAX_TEXT, "sample text") or DEFAULT_TEXT
        try:
            count = int(takes)
        except (TypeError, ValueError):
            count = 0
        if not 1 <= count <= MAX_TAKES:
            raise InvalidInput(f"Ask for 1 to {MAX_TAKES} takes.")
        engine = self._engine()
        if user is not None:
            self.studio.quotas.check_take(user, *([text] * count))
        params = GenerationParams(seed=_seed(seed)).with_seed()
        request = SpeechRequest(chunks=(text,) * count, voice=(), params=params, language=language or "auto",
                                size="1.7B", instruct=description)
        with engine.lock:
            if engine.loaded_size is None:
                self.studio.tts.unload()  # one big model in memory at a time
            results = [e for e in engine.speak(request) if isinstance(e, ChunkResult)]
            if engine.status().get("device") == "cpu":
                engine.unload()  # see the module docstring
        design = Design(new_id(), owner, description, text, language or "auto")
        folder = self._folder(design)
        for result in sorted(results, key=lambda r: r.index):
            path = folder / f"take-{result.index + 1}.wav"
            atomic_write_bytes(path, audio.wav_bytes(result.audio, result.sample_rate))
            design.takes.append(DesignTake(result.index, result.seed, path, result.duration, result.hit_cap))
        self._keep(design)
        return design

    def _folder(self, design: Design) -> Path:
        return owner_root(self.studio.settings.data_dir, design.owner) / DESIGN_FOLDER / design.id

    def _keep(self, design: Design) -> None:
        with self._lock:
            self._designs[design.id] = design
            while len(self._designs) > KEEP:
                _, old = self._designs.popitem(last=False)
                shutil.rmtree(self._folder(old), ignore_errors=True)

    # ---- reading, keeping, forgetting ----------------------------------------------------------
    def get(self, design_id: str, *, owner: str = "") -> Design:
        """The owner's design; another owner's id answers like one that does not exist."""
        with self._lock:
            design = self._designs.get(str(design_id))
        if design is None or design.owner != owner:
            raise NotFound(f"No voice design with id {design_id}. Design the voice again.")
        return design

    def save(self, design_id: str, take: Any, name: str, *, owner: str = "", user: str | None = None,
             consent: str | None = None) -> Any:
        """Keep take number ``take`` (from 1) of a design as a new profile named ``name``: the take is
        its first sample, the sample text its transcript, the description its description."""
        design = self.get(design_id, owner=owner)
        chosen = design.take(take)
        profile = self.studio.create_profile(name, design.description, design.language, owner=owner, user=user,
                                             consent=consent)
        try:
            self.studio.add_sample(profile.id, chosen.path, design.text, owner=owner, user=user)
        except BaseException:
            self.studio.delete_profile(profile.id, owner=owner)  # no half-made voice
            raise
        return self.studio.get_profile(profile.id, owner=owner)

    def forget(self, owner: str) -> int:
        """Forget every design of ``owner`` with its takes ("Delete everything"); returns how many."""
        with self._lock:
            mine = [d for d in self._designs.values() if d.owner == owner]
            for design in mine:
                del self._designs[design.id]
        for design in mine:
            shutil.rmtree(self._folder(design), ignore_errors=True)
        return len(mine)


def _seed(value: Any) -> int | None:
    """A seed typed by a person: blank means random."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidInput("The seed must be a whole number, or blank for a random one.") from None
