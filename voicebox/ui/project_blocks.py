"""The block editor of the Projects tab: change what a block says and who says it, split it at the
cursor, merge it with the next, move it, delete it, and listen to its take sentence by sentence.

Every action answers with the whole visible state of the tab (:class:`ProjectView` from
:mod:`.projects`) and of the editor, so the table, the pager and the editor never disagree about
which block is open. A refused action (a cursor at the end of the text, a merge across voices)
changes nothing on the page: the ``refusing`` wrapper turns it into a toast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..effects import CUSTOM, NONE, PRESET_LABELS, PRESET_NAMES
from ..errors import InvalidInput
from ..projects.block_effects import set_block_effect
from ..projects.records import Block, Project
from ..take_effects import played_path
from .common import UIContext, escape, refusing
from .takes import status_html

if TYPE_CHECKING:
    from .projects import ProjectHandlers

#: The split button reads where the cursor is in the block's text box; the server gets that index.
CURSOR_JS = """(project, block, text, cursor, page) => {
  const box = document.querySelector('#block-text textarea');
  return [project, block, text, box ? box.selectionStart : -1, page];
}"""


def block_state(project: Project, block: Block) -> tuple[str, str]:
    """(words, kind) saying where a block stands: to render, edited, rendered (with the quality
    gate's note when it asks for a listen), or failed (with why)."""
    if block.status == "rendered":
        if block.message:
            return f"Rendered; worth a listen: {block.message}", "warn"
        return "Rendered.", "ok"
    if block.status == "failed":
        return f"Could not be made: {block.message or 'see the log'}", "error"
    if block.status == "stale":
        return "Edited since its render: Render makes it again.", "info"
    return "Not rendered yet: press Render.", "info"


@dataclass
class EditorParts:
    """The editor's components, in the order :meth:`BlockHandlers.editor` fills them."""

    block_id: Any
    box: Any
    title: Any
    text: Any
    voice: Any
    pause: Any
    chapter: Any
    state: Any
    player: Any
    take_id: Any
    effect: Any

    @property
    def outputs(self) -> list[Any]:
        return [self.block_id, self.box, self.title, self.text, self.voice, self.pause, self.chapter,
                self.state, self.player, self.take_id, self.effect]


def effect_choices() -> list[tuple[str, str]]:
    """The block editor's effect picker: none, the presets, and "custom" (settings set elsewhere)."""
    return [("No effect", NONE), *((PRESET_LABELS[k], k) for k in PRESET_NAMES),
            ("Custom settings (set over the API)", CUSTOM)]


def effect_key(block: Block) -> str:
    return NONE if block.effects is None else (block.effects.preset if block.effects.preset in PRESET_NAMES
                                               else CUSTOM)


class BlockHandlers:
    """Callbacks of the block editor; each is a thin call into ``studio.projects``."""

    def __init__(self, ctx: UIContext, tab: "ProjectHandlers") -> None:
        self.ctx = ctx
        self.tab = tab

    @property
    def projects(self) -> Any:
        return self.ctx.studio.projects

    def closed(self) -> tuple[Any, ...]:
        return ("", gr.update(visible=False), "", gr.skip(), gr.skip(), gr.skip(), gr.skip(), "",
                gr.update(value=None, visible=False), "", gr.skip())

    def editor(self, project: Project, block_id: str) -> tuple[Any, ...]:
        """The editor showing one block: (id, box, title, text, voice, pause, chapter, state, player,
        take, effect); the player plays the take as the export will (with the block's effect)."""
        block = project.block(block_id)
        if block is None:
            return self.closed()
        number = project.blocks.index(block) + 1
        words, kind = block_state(project, block)
        player = None
        if block.status == "rendered" and block.generation_id:
            path = played_path(self.ctx.studio, block.generation_id, owner=project.owner)
            player = self.ctx.temp.copy(path, f"block-{number}.wav", project.owner)
        take = block.generation_id if block.status == "rendered" else ""
        return (block.id, gr.update(visible=True), f"#### Block {number} of {len(project.blocks)}",
                block.text, block.voice, block.pause, block.chapter, status_html(words, kind),
                gr.update(value=player, visible=player is not None), take, effect_key(block))

    def both(self, project_id: str, block_id: str, page: int | None = None) -> tuple[Any, ...]:
        """The tab's view on the page that shows ``block_id`` (or ``page``), then the editor."""
        project = self.projects.store.get(project_id, self.ctx.owner())
        return (*self.tab.view(project_id, page, focus=block_id), *self.editor(project, block_id))

    @refusing
    def pick(self, ids: list[str], project_id: str, evt: gr.SelectData) -> tuple[Any, ...]:
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not ids or index is None or not 0 <= int(index) < len(ids):
            return self.closed()
        return self.editor(self.projects.store.get(project_id, self.ctx.owner()), ids[int(index)])

    @refusing
    def save(self, project_id: str, block_id: str, text: str, voice: str | None, pause: Any, chapter: str,
             effect: str | None, page: int) -> tuple[Any, ...]:
        """Save the block; a new effect is applied to its take at once (no re-render), "custom"
        keeps the settings it has."""
        self._need(block_id)
        owner = self.ctx.owner()
        project = self.projects.update_block(project_id, block_id, owner=owner, text=text, voice=voice or "",
                                             pause=pause, chapter=chapter or "")
        block = project.block(block_id)
        if block is not None and effect not in (None, CUSTOM, effect_key(block)):
            set_block_effect(self.ctx.studio, project_id, block_id, effect, owner=owner)
        gr.Info("Block saved.")
        return self.both(project_id, block_id, page)

    @refusing
    def split(self, project_id: str, block_id: str, text: str, cursor: Any, page: int) -> tuple[Any, ...]:
        """Split at the cursor in the text box (what is typed there, saved or not)."""
        self._need(block_id)
        at = -1 if cursor in (None, "") else int(cursor)
        project = self.projects.split_block(project_id, block_id, at, text, owner=self.ctx.owner())
        number = next(i for i, b in enumerate(project.blocks) if b.id == block_id) + 1
        gr.Info(f"Split into blocks {number} and {number + 1}; both are to render.")
        return self.both(project_id, block_id, page)

    @refusing
    def merge(self, project_id: str, block_id: str, page: int) -> tuple[Any, ...]:
        self._need(block_id)
        self.projects.merge_with_next(project_id, block_id, owner=self.ctx.owner())
        gr.Info("Merged with the next block; it is to render.")
        return self.both(project_id, block_id, page)

    @refusing
    def move(self, project_id: str, block_id: str, step: int) -> tuple[Any, ...]:
        """One place up (-1) or down (+1); the table turns to the page where the block now is."""
        self._need(block_id)
        project = self.projects.store.get(project_id, self.ctx.owner())
        index = next((i for i, b in enumerate(project.blocks) if b.id == block_id), None)
        if index is None:
            raise InvalidInput("This block is gone; pick another one.")
        target = index + step
        if not 0 <= target < len(project.blocks):
            raise InvalidInput("This block is already the first." if step < 0 else "This block is already the last.")
        self.projects.move_block(project_id, block_id, target, owner=self.ctx.owner())
        return self.both(project_id, block_id)

    @refusing
    def delete(self, project_id: str, block_id: str, page: int) -> tuple[Any, ...]:
        self._need(block_id)
        self.projects.delete_block(project_id, block_id, owner=self.ctx.owner())
        gr.Info("Block deleted.")
        return (*self.tab.view(project_id, page), *self.closed())

    @refusing
    def add(self, project_id: str, text: str) -> tuple[Any, ...]:
        """A new block at the end, opened in the editor: ("", view..., editor...)."""
        if not project_id:
            raise InvalidInput("Create or open a project first.")
        project = self.projects.add_block(project_id, None, owner=self.ctx.owner(), text=text)
        return ("", *self.both(project_id, project.blocks[-1].id))

    def after_sentence(self, project_id: str, block_id: str, page: int) -> tuple[Any, ...]:
        """After a sentence of the block's take changed: the block says what its audio says now."""
        if project_id and block_id:
            self.projects.adopt_take_words(project_id, block_id, owner=self.ctx.owner())
            project = self.projects.store.get(project_id, self.ctx.owner())
            block = project.block(block_id)
            if block is not None:
                words, kind = block_state(project, block)
                return (*self.tab.view(project_id, page, focus=block_id), block.text, status_html(words, kind))
        return (gr.skip(),) * (len(self.tab.view(None)) + 2)

    @staticmethod
    def _need(block_id: str | None) -> None:
        if not block_id:
            raise InvalidInput("Pick a block in the table first.")


def describe_take(record: Any) -> str:
    """What the editor says under the block's player after a sentence changed."""
    note = f": {escape(record.message)}" if record.status != "ok" and record.message else ""
    return status_html(f"Rendered{note}.", "warn" if note else "ok")
