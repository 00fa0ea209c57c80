"""Projects: create, import, edit blocks, and keep each block's audio honest about its text.

A project lives in the store's ``projects`` table as one record (its blocks inside), written
atomically like every other record. Editing what a block says or who says it marks only that block
``stale``; a render (:mod:`.render`) then makes only stale and new blocks. Deleting a project or a
block deletes the takes that rendered it.

Every operation takes the caller's ``owner`` (:mod:`voicebox.owners`): another owner's project
is "does not exist", a block's voice must be one of the owner's profiles, and the project's takes
are the owner's. The render thread and start-up recovery read projects with ``owner=None``.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import InvalidInput, NotFound
from ..ids import is_valid_id, new_id, utc_now
from ..owners import owns
from .records import DEFAULT_PAUSE, Block, Project, RenderState

if TYPE_CHECKING:
    from ..services import Studio

TITLE_MAX_CHARS = 200
BLOCK_MAX_CHARS = 5000
#: Changes to these fields make a block's audio out of date.
SPOKEN_FIELDS = ("text", "voice", "language", "preset", "seed")


class ProjectStore:
    """The ``projects`` table of the studio's store."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio
        self.table = studio.store.table("projects")
        self.lock = threading.RLock()  # read-modify-write of one project at a time in this process

    def get(self, project_id: str, owner: str | None = None) -> Project:
        """A project; another owner's answers as a missing one (``None``: any owner's)."""
        with self.studio.store.locked():
            row = self.table.get(lambda r: r.get("id") == project_id) if is_valid_id(project_id) else None
        if row is None or not owns(owner, row):
            raise NotFound(f"Project {project_id!r} does not exist.")
        return Project.from_dict(dict(row))

    def all(self, owner: str | None = None) -> list[Project]:
        """``owner``'s projects, most recently changed first (``None``: everyone's)."""
        with self.studio.store.locked():
            rows = [dict(r) for r in self.table.all() if owns(owner, r)]
        return sorted((Project.from_dict(r) for r in rows), key=lambda p: p.updated_at, reverse=True)

    def put(self, project: Project) -> Project:
        project = replace(project, updated_at=utc_now())
        with self.studio.store.locked():
            if self.table.get(lambda r: r.get("id") == project.id) is None:
                self.table.insert(project.to_dict())
            else:
                self.table.update(project.to_dict(), lambda r: r.get("id") == project.id)
        return project

    def remove(self, project_id: str) -> None:
        with self.studio.store.locked():
            self.table.remove(lambda r: r.get("id") == project_id)


def clean_text(text: Any, what: str = "A block") -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{what} needs some text to speak.")
    cleaned = " ".join(text.split()) if "\n" not in text.strip() else text.strip()
    if len(cleaned) > BLOCK_MAX_CHARS:
        raise InvalidInput(f"A block has {len(cleaned):,} characters; the limit is {BLOCK_MAX_CHARS:,}. Split it.")
    return cleaned


def clean_pause(pause: Any) -> float:
    try:
        value = DEFAULT_PAUSE if pause in (None, "") else float(pause)
    except (TypeError, ValueError):
        raise InvalidInput(f"The pause must be a number of seconds, not {pause!r}.") from None
    if not 0 <= value <= 30:
        raise InvalidInput("The pause must be from 0 to 30 seconds.")
    return round(value, 3)


class Projects:
    """Every project operation of a :class:`~voicebox.services.Studio`."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio
        self.store = ProjectStore(studio)

    # ---- projects ------------------------------------------------------------------------------
    def create(self, title: str, voice: str = "", language: str = "auto",
               blocks: Iterable[dict[str, Any]] = (), *, owner: str = "") -> Project:
        now = utc_now()
        project = Project(id=new_id(), title=self._title(title), voice=self._voice(voice, owner),
                          language=self._language(language), created_at=now, updated_at=now, owner=owner)
        project = replace(project, blocks=tuple(self._new_block(owner, **b) for b in blocks))
        return self.store.put(project)

    def import_file(self, data: bytes | str, fmt: str, title: str = "", voice: str = "",
                    language: str = "auto", *, owner: str = "") -> Project:
        """A project from a text, Markdown, subtitle, CSV or dialogue file (see :mod:`.importers`),
        or from the ``project.json`` of an exported ZIP (``fmt`` ``project``)."""
        from .importers import match_voices, parse

        if fmt == "project":
            return self._from_json(data, title, voice, language, owner)

        result = parse(data, fmt)
        names = {p.name: p.id for p in self.studio.list_profiles(owner=owner)["items"]}
        result = match_voices(result, names)
        if result.unknown_voices:
            raise InvalidInput(
                "These names in the file match no voice profile: " + ", ".join(result.unknown_voices)
                + ". Create profiles with those names, or change the names in the file."
            )
        by_name = {name.casefold(): pid for name, pid in names.items()}
        blocks = [
            {"text": d.text, "voice": by_name.get(d.voice.casefold(), "") if d.voice else "",
             "language": d.language, "pause": d.pause, "chapter": d.chapter}
            for d in result.blocks
        ]
        return self.create(title or result.title or "Imported project", voice, language, blocks, owner=owner)

    def _from_json(self, data: bytes | str, title: str, voice: str, language: str, owner: str) -> Project:
        """A project again from its exported ``project.json``; voices that no longer exist fall
        back to the project's voice (the blocks keep their words, pauses and chapters)."""
        import json

        try:
            saved = json.loads(data)
            blocks = [b for b in saved["blocks"] if isinstance(b, dict)]
        except (ValueError, TypeError, KeyError):
            raise InvalidInput("This is not a voicebox project.json (from an exported ZIP).") from None
        known = {p.id for p in self.studio.list_profiles(owner=owner)["items"]}
        keep = ("text", "voice", "language", "preset", "seed", "pause", "chapter")
        cleaned = [{k: (b.get(k) if k != "voice" or b.get("voice") in known else "") for k in keep} for b in blocks]
        default_voice = voice or (saved.get("voice") if saved.get("voice") in known else "")
        return self.create(title or saved.get("title") or "Imported project", default_voice,
                           language if language != "auto" else saved.get("language", "auto"), cleaned, owner=owner)

    def update(self, project_id: str, *, owner: str = "", **changes: Any) -> Project:
        """Title, voice or language; blocks that follow the project's voice or language go stale."""
        with self.store.lock:
            project = self.store.get(project_id, owner)
            updates: dict[str, Any] = {}
            if changes.get("title") is not None:
                updates["title"] = self._title(changes["title"])
            if changes.get("voice") is not None:
                updates["voice"] = self._voice(changes["voice"], owner)
            if changes.get("language") is not None:
                updates["language"] = self._language(changes["language"])
            voice_changed = "voice" in updates and updates["voice"] != project.voice
            language_changed = "language" in updates and updates["language"] != project.language
            blocks = tuple(
                self._stale(b) if (voice_changed and not b.voice) or (language_changed and not b.language) else b
                for b in project.blocks
            )
            return self.store.put(replace(project, blocks=blocks, **updates))

    def delete(self, project_id: str, *, owner: str = "") -> None:
        with self.store.lock:
            project = self.store.get(project_id, owner)
            self.store.remove(project.id)
        self._drop_takes(project, (b.generation_id for b in project.blocks))

    # ---- blocks --------------------------------------------------------------------------------
    def add_block(self, project_id: str, position: int | None = None, *, owner: str = "", **fields_: Any) -> Project:
        with self.store.lock:
            project = self.store.get(project_id, owner)
            blocks = list(project.blocks)
            at = len(blocks) if position is None else max(0, min(int(position), len(blocks)))
            blocks.insert(at, self._new_block(owner, **fields_))
            return self.store.put(replace(project, blocks=tuple(blocks)))

    def update_block(self, project_id: str, block_id: str, *, owner: str = "", **changes: Any) -> Project:
        """Change a block; a change to what it says or who says it marks it stale."""
        with self.store.lock:
            project = self.store.get(project_id, owner)
            block = self._block(project, block_id)
            updated = block
            if changes.get("text") is not None:
                updated = replace(updated, text=clean_text(changes["text"]))
            if changes.get("voice") is not None:
                updated = replace(updated, voice=self._voice(changes["voice"], owner))
            if changes.get("language") is not None:
                updated = replace(updated, language="" if changes["language"] in ("", None) else self._language(changes["language"]))
            for name in ("preset", "chapter"):
                if changes.get(name) is not None:
                    updated = replace(updated, **{name: str(changes[name]).strip()})
            if "seed" in changes:
                updated = replace(updated, seed=None if changes["seed"] in (None, "") else int(changes["seed"]))
            if changes.get("pause") is not None:
                updated = replace(updated, pause=clean_pause(changes["pause"]))
            if any(getattr(updated, f) != getattr(block, f) for f in SPOKEN_FIELDS):
                updated = self._stale(updated)
            blocks = tuple(updated if b.id == block.id else b for b in project.blocks)
            return self.store.put(replace(project, blocks=blocks))

    def move_block(self, project_id: str, block_id: str, position: int, *, owner: str = "") -> Project:
        with self.store.lock:
            project = self.store.get(project_id, owner)
            block = self._block(project, block_id)
            blocks = [b for b in project.blocks if b.id != block.id]
            blocks.insert(max(0, min(int(position), len(blocks))), block)
            return self.store.put(replace(project, blocks=tuple(blocks)))

    def split_block(self, project_id: str, block_id: str, at: int, text: str | None = None, *,
                    owner: str = "") -> Project:
        """Split a block in two at character ``at`` of ``text`` (what the editor shows; the stored
        text when None). The first part keeps the block's place, voice and chapter; the second is a
        new block with the same voice, language and options, and takes the pause that followed the
        whole block. Both parts are to render again (their audio no longer matches)."""
        with self.store.lock:
            project = self.store.get(project_id, owner)
            block = self._block(project, block_id)
            whole = block.text if text is None else str(text)
            try:
                cut = int(at)
            except (TypeError, ValueError):
                raise InvalidInput("Put the cursor where the new block should start, then press Split.") from None
            first, second = whole[:cut].strip(), whole[cut:].strip() if 0 < cut < len(whole) else ""
            if not first or not second:
                raise InvalidInput("Put the cursor inside the text, where the new block should start, then press Split.")
            head = self._stale(replace(block, text=clean_text(first), pause=DEFAULT_PAUSE))
            tail = Block(id=new_id(), text=clean_text(second), voice=block.voice, language=block.language,
                         preset=block.preset, seed=block.seed, pause=block.pause)
            blocks = list(project.blocks)
            at_index = blocks.index(block)
            blocks[at_index:at_index + 1] = [head, tail]
            saved = self.store.put(replace(project, blocks=tuple(blocks)))
        self._drop_takes(project, [block.generation_id])
        return saved

    def merge_with_next(self, project_id: str, block_id: str, *, owner: str = "") -> Project:
        """Join a block and the one after it into one block (to render again): the words run on,
        the pause after is the second block's, the chapter the first's. Blocks with different
        voices or languages are refused: one block has one voice."""
        with self.store.lock:
            project = self.store.get(project_id, owner)
            block = self._block(project, block_id)
            at_index = project.blocks.index(block)
            if at_index + 1 >= len(project.blocks):
                raise InvalidInput("This is the last block: there is no next block to merge it with.")
            nxt = project.blocks[at_index + 1]
            if (block.voice or project.voice) != (nxt.voice or project.voice) or block.language != nxt.language:
                raise InvalidInput(f"Blocks {at_index + 1} and {at_index + 2} have different voices or languages; "
                                   "give them the same one first.")
            if nxt.chapter and not block.chapter:
                raise InvalidInput(f"Block {at_index + 2} starts the chapter “{nxt.chapter}”; clear its chapter first "
                                   "to merge it into the block before.")
            joined = clean_text(block.text.rstrip() + ("\n" if "\n" in block.text + nxt.text else " ") + nxt.text.lstrip())
            merged = self._stale(replace(block, text=joined, pause=nxt.pause))
            blocks = list(project.blocks)
            blocks[at_index:at_index + 2] = [merged]
            saved = self.store.put(replace(project, blocks=tuple(blocks)))
        self._drop_takes(project, [block.generation_id, nxt.generation_id])
        return saved

    def adopt_take_words(self, project_id: str, block_id: str, *, owner: str = "") -> Project:
        """After a sentence of a block's take was re-made with edited words, the block says what
        its audio says: its text becomes the take's sentences, and it stays rendered."""
        with self.store.lock:
            project = self.store.get(project_id, owner)
            block = self._block(project, block_id)
            if not block.generation_id:
                return project
            take = self.studio.get_generation(block.generation_id, owner=owner)
            words = " ".join(c.text.strip() for c in take.chunks if c.text.strip())
            if not words or " ".join(block.text.split()) == " ".join(words.split()):
                return project
            changed = replace(block, text=clean_text(words))
            return self.store.put(replace(project, blocks=tuple(changed if b.id == block.id else b for b in project.blocks)))

    def delete_block(self, project_id: str, block_id: str, *, owner: str = "") -> Project:
        with self.store.lock:
            project = self.store.get(project_id, owner)
            block = self._block(project, block_id)
            saved = self.store.put(replace(project, blocks=tuple(b for b in project.blocks if b.id != block.id)))
        self._drop_takes(project, [block.generation_id])
        return saved

    def set_block_result(self, project_id: str, block_id: str, spoken: Block, generation_id: str,
                         status: str, message: str = "") -> bool:
        """Record a rendered take, unless the block was edited (or deleted) while it was made:
        then the take is dropped and the block stays stale. Returns whether it was kept."""
        with self.store.lock:
            project = self.store.get(project_id)
            current = project.block(block_id)
            unchanged = current is not None and all(getattr(current, f) == getattr(spoken, f) for f in SPOKEN_FIELDS)
            if not unchanged:
                keep = False
            else:
                keep = True
                previous = current.generation_id
                done = replace(current, status=status, generation_id=generation_id, message=message)
                project = replace(project, blocks=tuple(done if b.id == block_id else b for b in project.blocks))
                self.store.put(project)
        if not keep:
            self._drop_takes(project, [generation_id])
        elif previous and previous != generation_id:
            self._drop_takes(project, [previous])
        return keep

    def set_render(self, project_id: str, render: RenderState) -> Project:
        with self.store.lock:
            project = self.store.get(project_id)
            return self.store.put(replace(project, render=render))

    def export(self, project_id: str, fmt: str = "m4b", subtitles: str = "srt", level: str = "block",
               use: str = "audiobook", step: Any = None, *, owner: str = "") -> list[Any]:
        """Files of a rendered project (see :mod:`.exporting`)."""
        from .exporting import export_project

        return export_project(self, project_id, fmt, subtitles, level, use, step, owner=owner)

    # ---- helpers -------------------------------------------------------------------------------
    def _new_block(self, owner: str, text: str, voice: str = "", language: str = "", preset: str = "",
                   seed: Any = None, pause: Any = None, chapter: str = "", **_: Any) -> Block:
        return Block(
            id=new_id(), text=clean_text(text), voice=self._voice(voice, owner) if voice else "",
            language=self._language(language) if language else "", preset=str(preset or "").strip(),
            seed=None if seed in (None, "") else int(seed), pause=clean_pause(pause), chapter=str(chapter or "").strip(),
        )

    @staticmethod
    def _stale(block: Block) -> Block:
        return replace(block, status="stale" if block.generation_id else "new", message="")

    @staticmethod
    def _block(project: Project, block_id: str) -> Block:
        block = project.block(block_id)
        if block is None:
            raise NotFound(f"Block {block_id!r} does not exist in this project.")
        return block

    @staticmethod
    def _title(title: Any) -> str:
        value = " ".join(str(title or "").split())
        if not value:
            raise InvalidInput("Give the project a title.")
        if len(value) > TITLE_MAX_CHARS:
            raise InvalidInput(f"The title has {len(value)} characters; the limit is {TITLE_MAX_CHARS}.")
        return value

    def _voice(self, voice: Any, owner: str) -> str:
        """One of ``owner``'s profiles by id (or by name, as OpenAI-style clients write it), or ""
        for none yet."""
        if voice in (None, ""):
            return ""
        return self.studio.find_profile(str(voice), owner=owner).id

    def _language(self, language: Any) -> str:
        from ..languages import choose

        return choose(language, self.studio.languages())

    def _drop_takes(self, project: Project, generation_ids: Iterable[str]) -> None:
        """Delete takes of ``project`` (they are its owner's)."""
        for generation_id in generation_ids:
            if generation_id:
                try:
                    self.studio.delete_generation(generation_id, owner=project.owner)
                except NotFound:
                    pass
