"""Rendering a project in the background: block by block, pausable, and safe across a restart.

Every finished block is written to the project record at once (its take first, then the block's
pointer to it), so a server killed mid-render loses at most the block being made: at the next
start :meth:`Renders.recover` marks the render ``paused`` ("resume to continue") and deletes any
take that no block points to (the half-finished block's), so nothing is half-kept. Resuming makes
only the blocks that are not ``rendered``. Each block is an ordinary take through the studio, so
the quality gate checks its sentences and its takes can be changed later like any other.

Blocks are made in groups where the speech backend batches (:meth:`Takes.group
<voicebox.generation.Takes.group>`): consecutive blocks of one voice, language and preset, without
a seed of their own, whose sentence chunks fit one batch (``rows_per_batch``, 4 on a CPU). Most
blocks are one chunk, which alone leaves the CPU reading the weights for one row; four rows cost
about the same (``bench/project_render_speed.py``). Each block still gets its own take, kept as
soon as it is saved, so the rules above hold per block; a pause or cancel takes effect between
groups (a group is one batch, a short wait). A block with its own seed is made alone, so that seed
reproduces it; ``Renders(batching=False)`` makes every block alone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

from ..errors import Cancelled, InvalidInput, VoiceboxError
from ..owners import owner_of
from ..records import Generation, GenerationRequest
from .records import Block, Project, RenderState

if TYPE_CHECKING:
    from .service import Projects

log = logging.getLogger(__name__)
INTERRUPTED = "The server stopped during the render; resume it to make the remaining blocks."


class Renders:
    """One background render per project, with pause and cancel.

    ``batching``: make consecutive blocks of one voice together where the backend batches (see
    the module's notes); ``False`` makes every block alone (tests and benchmarks compare both).
    """

    def __init__(self, projects: "Projects", batching: bool = True) -> None:
        self.projects = projects
        self.batching = batching
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, threading.Event, list[str]]] = {}

    def start(self, project_id: str, *, owner: str = "") -> Project:
        """Render (or resume) every block of one of ``owner``'s projects that is not rendered yet;
        the takes are the owner's, spoken with their profiles."""
        project = self.projects.store.get(project_id, owner)
        missing = [b for b in project.to_render if not (b.voice or project.voice)]
        if missing:
            raise InvalidInput(f"{len(missing)} block(s) have no voice: choose the project's voice or each block's.")
        with self._lock:
            if project_id in self._running:
                raise InvalidInput("This project is already rendering.")
            stop = threading.Event()
            why: list[str] = []
            thread = threading.Thread(target=self._run, args=(project_id, stop, why), daemon=True,
                                      name=f"voicebox-render-{project_id[:8]}")
            self._running[project_id] = (thread, stop, why)
        todo = len(project.to_render)
        project = self.projects.set_render(project_id, RenderState("running", 0, todo))
        thread.start()
        return project

    def pause(self, project_id: str, *, owner: str = "") -> Project:
        return self._stop(project_id, "paused", owner)

    def cancel(self, project_id: str, *, owner: str = "") -> Project:
        return self._stop(project_id, "cancelled", owner)

    def _stop(self, project_id: str, state: str, owner: str) -> Project:
        self.projects.store.get(project_id, owner)  # another owner's: "does not exist"
        with self._lock:
            entry = self._running.get(project_id)
        if entry is None:
            raise InvalidInput("This project is not rendering.")
        thread, stop, why = entry
        why.append(state)
        stop.set()
        thread.join(60)
        return self.projects.store.get(project_id)

    def wait(self, project_id: str, timeout: float | None = None) -> Project:
        """Block until the render ends (tests, CLI)."""
        with self._lock:
            entry = self._running.get(project_id)
        if entry is not None:
            entry[0].join(timeout)
        return self.projects.store.get(project_id)

    def is_running(self, project_id: str) -> bool:
        with self._lock:
            return project_id in self._running

    def recover(self) -> list[str]:
        """At start-up: renders that were running are paused, and takes no block points to are
        deleted (a block half-made when the server stopped). Returns the paused projects' ids."""
        paused = []
        referenced = set()
        projects = self.projects.store.all()
        known = {p.id for p in projects}  # takes of batches carry their batch's id: not ours to judge
        for project in projects:
            referenced.update(b.generation_id for b in project.blocks if b.generation_id)
            if project.render.state == "running":
                self.projects.set_render(project.id, replace(project.render, state="paused", current="",
                                                             seconds_left=None, message=INTERRUPTED))
                paused.append(project.id)
        if not known:  # no project: no take can be a project's orphan, and the history need not be read
            return paused
        studio = self.projects.studio
        for row in studio.store.generations.all():
            if row.get("project_id") in known and row.get("id") not in referenced:
                studio.delete_generation(row["id"], owner=owner_of(row))
        return paused

    # ---- the worker ----------------------------------------------------------------------------
    def _run(self, project_id: str, stop: threading.Event, why: list[str]) -> None:
        started, spoken_chars, done = time.monotonic(), 0, 0
        state = "done"
        tried: set[str] = set()  # a block that failed in this run is not tried again in it
        try:
            while True:
                project = self.projects.store.get(project_id)
                todo = [b for b in project.to_render if b.id not in tried]
                if not todo:
                    break
                if stop.is_set():
                    state = why[-1] if why else "paused"
                    break
                group = self._group(project, todo)  # the first blocks of ``todo``
                tried.update(b.id for b in group)
                self._progress(project_id, done, todo, started, spoken_chars)
                try:
                    for k, block in enumerate(self._render_group(project, group, stop)):
                        done += 1
                        spoken_chars += len(block.text)
                        if k + 1 < len(group):  # the group's next block is the current one now
                            self._progress(project_id, done, todo[k + 1:], started, spoken_chars)
                except Cancelled:
                    state = why[-1] if why else "paused"
                    break
            final = self.projects.store.get(project_id)
            failed = [b for b in final.blocks if b.status == "failed"]
            if state == "done" and failed:
                state = "failed"
            message = f"{len(failed)} block(s) could not be made; see their messages." if failed else ""
            self.projects.set_render(project_id, RenderState(state, done, done + len(final.to_render), "", None, message))
        except Exception as exc:  # the record must not stay "running"
            log.exception("render of project %s failed", project_id)
            self.projects.set_render(project_id, RenderState("failed", done, done, "", None, f"The render stopped: {exc}"))
        finally:
            with self._lock:
                self._running.pop(project_id, None)

    def _progress(self, project_id: str, done: int, left: list[Block], started: float, spoken_chars: int) -> None:
        """``left``: the blocks still to make in this run, the current one first."""
        rate = (time.monotonic() - started) / spoken_chars if spoken_chars else None
        chars = sum(len(b.text) for b in left)
        self.projects.set_render(project_id, RenderState(
            "running", done, done + len(left), left[0].text[:80], round(rate * chars, 1) if rate else None,
        ))

    def _group(self, project: Project, todo: list[Block]) -> list[Block]:
        """The first blocks of ``todo`` that are made together: one voice, language and preset, no
        seed of their own, chunks within one batch of the backend. Just the first block when the
        backend does not batch, batching is off, or the first block has a seed."""
        takes = self.projects.studio.takes
        rows = takes.batch_rows() if self.batching else 1
        first = todo[0]
        if rows < 2 or first.seed is not None:
            return [first]
        group, chunks = [first], takes.chunk_count(first.text)
        for block in todo[1:]:
            chunks += takes.chunk_count(block.text)
            alike = block.seed is None and speaks_like(project, block) == speaks_like(project, first)
            if not alike or chunks > rows:
                break
            group.append(block)
        return group

    def _render_group(self, project: Project, group: list[Block], stop: threading.Event) -> Iterator[Block]:
        """Make the group's blocks; yields each block once its result is recorded."""
        if len(group) == 1:
            self._render_block(project, group[0], stop)
            yield group[0]
            return
        requests = [block_request(project, b) for b in group]
        for position, take in self.projects.studio.takes.group(requests, cancel=stop):
            self._record(project, group[position], take)
            yield group[position]

    def _render_block(self, project: Project, block: Block, stop: threading.Event) -> None:
        try:
            take: Generation | VoiceboxError = self.projects.studio.generate(
                block_request(project, block), cancel=stop, owner=project.owner)
        except Cancelled:
            raise
        except VoiceboxError as exc:  # this block cannot be made (its voice was deleted...): say so, go on
            take = exc
        self._record(project, block, take)

    def _record(self, project: Project, block: Block, take: Generation | VoiceboxError) -> None:
        """The block's result: its take (with the take's review note), or why it failed."""
        if isinstance(take, VoiceboxError):
            self.projects.set_block_result(project.id, block.id, block, block.generation_id, "failed",
                                           take.message)
            return
        note = take.message if take.status != "ok" else ""
        self.projects.set_block_result(project.id, block.id, block, take.id, "rendered", note)


def speaks_like(project: Project, block: Block) -> tuple[str, str, str]:
    """What must match for blocks to be spoken together: voice, language, preset as rendered."""
    request = block_request(project, block)
    return request.profile_id, request.language or "", request.preset or ""


def block_request(project: Project, block: Block) -> GenerationRequest:
    """The take that renders ``block``: its own options, else the project's."""
    return GenerationRequest(
        profile_id=block.voice or project.voice, text=block.text,
        language=block.language or (project.language if project.language != "auto" else None),
        preset=block.preset or None, seed=block.seed, project_id=project.id, owner=project.owner,
        effects=block.effects,
    )
