"""voicebox's domain, defined once: what a generation request, a take and its chunks are.

Every layer used to pass ``dict[str, Any]`` and restate the ten generation options (REST schema,
the service, the Generate tab, the hidden Gradio API, the OpenAI route, the CLI). Now a request is
one frozen :class:`GenerationRequest`; the service answers with a :class:`Generation` whose
:class:`Chunk` list says which text became which stretch of audio, with its seed: the unit that
quality checks and sentence re-takes attach to. The store keeps plain JSON: records convert with
``to_dict``/``from_dict`` at that edge, and the REST schemas and the UI convert at theirs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .effects import EffectChain
from .effects import stored as stored_effects


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` declares: old records may carry retired fields."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a take is made from. Blank options mean "the default" (the profile's
    language, the loaded model size, the Balanced preset, a random seed)."""

    profile_id: str
    text: str
    language: str | None = None
    model_size: str | None = None
    preset: str | None = None
    seed: int | str | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    max_new_tokens: int | None = None
    #: ``off``, ``check`` (score and flag each sentence) or ``retake`` (make a failing sentence
    #: again, up to ``max_takes``); ``None``: the server's ``VOICEBOX_QUALITY``.
    quality: str | None = None
    max_takes: int | None = None
    #: Set by project rendering (never by a client): the take belongs to that project.
    project_id: str | None = None
    #: Who asks (:mod:`voicebox.owners`); set by the studio from its caller, never by a client:
    #: the profile must be theirs, and the take becomes theirs.
    owner: str = ""
    #: Effects on the finished take (:mod:`voicebox.effects`); ``None``: the voice's default.
    effects: EffectChain | None = None
    #: A style instruction for a built-in speaker (:mod:`voicebox.speakers`); refused for a clone.
    instruct: str | None = None

    def with_changes(self, **changes: Any) -> "GenerationRequest":
        return replace(self, **changes)

    def options(self) -> dict[str, Any]:
        """The options other than the voice and the text (for logs and the CLI)."""
        return {k: v for k, v in asdict(self).items() if k not in ("profile_id", "text", "project_id", "owner")}


@dataclass(frozen=True)
class ChunkTake:
    """One take of one sentence chunk: its audio file, seed, and what the quality gate measured
    (``scores`` is a :class:`voicebox.quality.ChunkScore` as a dict; empty when not checked)."""

    seed: int
    text: str
    file: str = ""
    duration: float = 0.0
    frames: int = 0
    hit_cap: bool = False
    passed: bool | None = None
    score: float | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChunkTake":
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Chunk:
    """One sentence chunk of a take, as stored: where it lies in the joined audio and how it went.

    ``status`` is ``ok``; ``needs_review`` when no take passed the quality gate; ``incomplete``
    when the used take hit the length cap (the model never said it had finished). ``seed`` and
    ``text`` are the used take's; ``takes`` are every take made, ``used_take`` the one in the audio.
    """

    index: int
    text: str
    seed: int
    offset: float
    duration: float
    status: str = "ok"
    frames: int = 0
    takes: tuple[ChunkTake, ...] = ()
    used_take: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["takes"] = [t.to_dict() for t in self.takes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Chunk":
        known = _known(cls, data)
        known["takes"] = tuple(
            t if isinstance(t, ChunkTake) else ChunkTake.from_dict(t) for t in known.get("takes") or ()
        )
        return cls(**known)


@dataclass(frozen=True)
class Generation:
    """A saved take: its text, voice, the model that spoke, settings, timings and chunks."""

    id: str
    profile_id: str
    profile_name: str
    text: str
    file: str
    language: str
    model: str
    size: str
    mode: str
    seed: int
    duration: float
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cache_hit: bool = False
    chunks: tuple[Chunk, ...] = ()
    status: str = "ok"
    message: str = ""
    created_at: str = ""
    backend: str = "qwen3-tts"
    quality: str = "off"
    #: The project whose block this take renders ("" for a take of the Generate tab): such takes
    #: belong to their project and are not listed in History.
    project_id: str = ""
    #: Whose take it is (:mod:`voicebox.owners`; "" the local user, as every record from before).
    owner: str = ""
    #: Its effect chain (:mod:`voicebox.take_effects`): ``file`` stays the clean take, the
    #: processed audio is derived from it; ``None``: no effect.
    effects: EffectChain | None = None
    #: The style instruction a built-in speaker was given (:mod:`voicebox.speakers`); "" for none.
    instruct: str = ""

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chunks"] = [c.to_dict() for c in self.chunks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Generation":
        known = _known(cls, data)
        chunks = known.get("chunks")
        # Records written before chunks were kept stored only their number.
        known["chunks"] = tuple(Chunk.from_dict(c) for c in chunks) if isinstance(chunks, list) else ()
        known["effects"] = stored_effects(known.get("effects"))
        return cls(**known)


@dataclass(frozen=True)
class Sample:
    """A cleaned voice recording of a profile (24 kHz mono WAV under the data directory)."""

    id: str
    profile_id: str
    file: str
    reference_text: str
    duration: float
    sample_rate: int
    sha256: str
    warnings: tuple[str, ...] = ()
    created_at: str = ""
    #: Its profile's owner.
    owner: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Sample":
        known = _known(cls, data)
        known["warnings"] = tuple(known.get("warnings") or ())
        return cls(**known)


@dataclass(frozen=True)
class Profile:
    """A voice: a name, a language and its samples (``samples`` is filled when asked for)."""

    id: str
    name: str
    description: str = ""
    language: str = "auto"
    created_at: str = ""
    updated_at: str = ""
    samples: tuple[Sample, ...] = ()
    sample_count: int = 0
    #: Whose voice it is (:mod:`voicebox.owners`); names are unique per owner.
    owner: str = ""
    #: When its maker confirmed having the speaker's permission (UTC ISO time); "" where nobody was
    #: asked (a one-person studio, or from before consent was asked).
    consented_at: str = ""
    #: The effect chain new takes of this voice get unless their request says otherwise.
    effects: EffectChain | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = [s.to_dict() for s in self.samples]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Profile":
        known = _known(cls, data)
        known["samples"] = tuple(
            s if isinstance(s, Sample) else Sample.from_dict(s) for s in known.get("samples") or ()
        )
        known["effects"] = stored_effects(known.get("effects"))
        return cls(**known)
