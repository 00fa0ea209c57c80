"""Rendering a project in the background: block by block, pausable, and safe across a restart.

Every finished block is written to the project record at once (its take first, then the block's
pointer to it), so a server killed mid-render loses at most the block being made: at the next
start :meth:`Renders.recover` marks the render ``paused`` ("resume to continue") and deletes any
take that no block points to (the half-finished block's), so nothing is half-kept. Resuming makes
only the blocks that are not ``rendered``. Each block is an ordinary take through the studio, so
the quality gate checks its sentences and its takes can be changed later like any other.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import Cancelled, InvalidInput, VoiceboxError
from ..records import GenerationRequest
from .records import Block, Project, RenderState

if TYPE_CHECKING:
    from .service import Projects

log = logging.getLogger(__name__)
INTERRUPTED = "The server stopped during the render; resume it to make the remaining blocks."


class Renders:
    """One background render per project, with pause and cancel."""

    def __init__(self, projects: "Projects") -> None:
        self.projects = projects
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, threading.Event, list[str]]] = {}

    def start(self, project_id: str) -> Project:
        """Render (or resume) every block that is not rendered yet."""
        project = self.projects.store.get(project_id)
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

    def pause(self, project_id: str) -> Project:
        return self._stop(project_id, "paused")

    def cancel(self, project_id: str) -> Project:
        return self._stop(project_id, "cancelled")

    def _stop(self, project_id: str, state: str) -> Project:
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
        studio = self.projects.studio
        for row in studio.store.generations.all():
            if row.get("project_id") in known and row.get("id") not in referenced:
                studio.delete_generation(row["id"])
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
                block = todo[0]
                tried.add(block.id)
                left = sum(len(b.text) for b in todo)
                rate = (time.monotonic() - started) / spoken_chars if spoken_chars else None
                self.projects.set_render(project_id, RenderState(
                    "running", done, done + len(todo), block.text[:80], round(rate * left, 1) if rate else None,
                ))
                try:
                    self._render_block(project, block, stop)
                except Cancelled:
                    state = why[-1] if why else "paused"
                    break
                done += 1
                spoken_chars += len(block.text)
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

    def _render_block(self, project: Project, block: Block, stop: threading.Event) -> None:
        request = GenerationRequest(
            profile_id=block.voice or project.voice, text=block.text,
            language=block.language or (project.language if project.language != "auto" else None),
            preset=block.preset or None, seed=block.seed, project_id=project.id,
        )
        try:
            take = self.projects.studio.generate(request, cancel=stop)
        except Cancelled:
            raise
        except VoiceboxError as exc:  # this block cannot be made (its voice was deleted...): say so, go on
            self.projects.set_block_result(project.id, block.id, block, block.generation_id, "failed", exc.message)
            return
        note = take.message if take.status != "ok" else ""
        self.projects.set_block_result(project.id, block.id, block, take.id, "rendered", note)
