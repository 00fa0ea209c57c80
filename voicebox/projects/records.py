"""A project's records: its blocks and the state of its render, frozen like the rest of the domain.

A block is a paragraph or a line with its own voice, language, options, pause and chapter; its
``status`` says whether its audio is current (``rendered``), must be made (``new``, or ``stale``
after an edit), or failed. Its take is an ordinary :class:`~voicebox.records.Generation` (so its
sentences and their takes work as anywhere else) marked with the project's id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..effects import EffectChain
from ..effects import stored as stored_effects

BLOCK_STATES = ("new", "stale", "rendered", "failed")
#: ``idle`` (never started), ``running``, ``paused`` (by a person, or by a restart mid-render),
#: ``cancelled``, ``done``, ``failed``.
RENDER_STATES = ("idle", "running", "paused", "cancelled", "done", "failed")
DEFAULT_PAUSE = 0.6


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Block:
    id: str
    text: str
    voice: str = ""          # a profile id; "" = the project's voice
    language: str = ""       # "" = the project's language
    preset: str = ""         # "" = the default preset
    seed: int | None = None
    pause: float = DEFAULT_PAUSE
    chapter: str = ""
    status: str = "new"
    generation_id: str = ""  # the take that renders it (when rendered)
    message: str = ""        # why it failed, or the take's review note
    #: Effects on its take (:mod:`voicebox.projects.block_effects`): changing them never re-renders.
    effects: EffectChain | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Block":
        known = _known(cls, data)
        known["effects"] = stored_effects(known.get("effects"))
        return cls(**known)


@dataclass(frozen=True)
class RenderState:
    state: str = "idle"
    done: int = 0
    total: int = 0
    current: str = ""        # the block being made
    seconds_left: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RenderState":
        return cls(**_known(cls, data or {}))


@dataclass(frozen=True)
class Project:
    id: str
    title: str
    voice: str = ""
    language: str = "auto"
    blocks: tuple[Block, ...] = ()
    render: RenderState = field(default_factory=RenderState)
    created_at: str = ""
    updated_at: str = ""
    #: Whose project it is (:mod:`voicebox.owners`); its voices and takes are that owner's too.
    owner: str = ""

    def block(self, block_id: str) -> Block | None:
        return next((b for b in self.blocks if b.id == block_id), None)

    @property
    def to_render(self) -> list[Block]:
        return [b for b in self.blocks if b.status != "rendered"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["blocks"] = [b.to_dict() for b in self.blocks]
        data["render"] = self.render.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Project":
        known = _known(cls, data)
        known["blocks"] = tuple(Block.from_dict(b) for b in known.get("blocks") or ())
        known["render"] = RenderState.from_dict(known.get("render"))
        return cls(**known)
