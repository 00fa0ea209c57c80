"""Effects on a project's blocks (issue #18): kept with the block, applied to its take.

A block's chain is stored on the block, so every take that renders it gets it
(:func:`voicebox.projects.render.block_request`), and it is applied to the block's current take
at once, non-destructively (:func:`voicebox.take_effects.set_effect`): the clean take stays as it
was made, so changing or removing an effect never re-renders a block, and removing it gives back
the very audio that was made. Exports use each block's processed audio, with its cues moved when
an effect changes the speed (:mod:`.exporting`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..take_effects import chain_of, set_effect
from .records import Project

if TYPE_CHECKING:
    from ..services import Studio


def set_block_effect(studio: Studio, project_id: str, block_id: str, value: Any, *, owner: str = "") -> Project:
    """Give one of ``owner``'s blocks the effect ``value`` (a preset name, settings, or ``"none"``
    to remove it); its rendered take, if any, plays with it from now on."""
    projects = studio.projects
    with projects.store.lock:
        project = projects.store.get(project_id, owner)  # someone else's: the 404 of a missing one
        block = next((b for b in project.blocks if b.id == block_id), None)
        if block is None:
            raise NotFound(f"Block {block_id} does not exist.")
        chain = chain_of(value)  # refused in the person's words before anything changes
        if block.generation_id:
            try:
                set_effect(studio, block.generation_id, value, owner=owner)
            except NotFound:  # its take went (deleted in History): the block keeps the chain for the next render
                pass
        updated = replace(block, effects=None if chain.is_none else chain)
        blocks = tuple(updated if b.id == block.id else b for b in project.blocks)
        return projects.store.put(replace(project, blocks=blocks))
