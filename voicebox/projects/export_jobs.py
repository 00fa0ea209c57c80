"""Exports as background jobs: an hour of audio takes half a minute to encode, longer than a
request should hang. ``start`` answers at once with a job id; the job's state says which step runs
(reading the takes, timing the words for word-level subtitles, levelling the loudness, encoding),
and its files can be downloaded when done.
Jobs live in memory: a restart forgets them, and exporting again is cheap next to rendering.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound, VoiceboxError
from ..ids import new_id

if TYPE_CHECKING:
    from .service import Projects


@dataclass(frozen=True)
class ExportJob:
    id: str
    project_id: str
    format: str
    state: str = "running"      # running, done, failed
    step: str = "starting"
    message: str = ""
    files: tuple[str, ...] = field(default_factory=tuple)  # file names, in the export folder
    owner: str = ""  # the project's owner: nobody else sees the job

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "project_id": self.project_id, "format": self.format, "state": self.state,
                "step": self.step, "message": self.message, "files": list(self.files)}


class ExportJobs:
    def __init__(self, projects: Projects) -> None:
        self.projects = projects
        self._lock = threading.Lock()
        self._jobs: dict[str, ExportJob] = {}
        self._paths: dict[str, list[Path]] = {}

    def start(self, project_id: str, fmt: str, subtitles: str = "none", level: str = "block",
              use: str = "audiobook", *, owner: str = "") -> ExportJob:
        """Check what can be checked at once (the project, the formats, every block rendered),
        then export in the background. ``level`` "word" adds a Whisper pass (step "timing the
        words"); a Whisper that cannot be loaded fails the job with a message, not at start."""
        from .exporting import check_request

        check_request(self.projects, project_id, fmt, subtitles, use, level, owner=owner)
        job = ExportJob(new_id(), project_id, fmt, owner=owner)
        self._set(job)
        threading.Thread(target=self._run, args=(job, fmt, subtitles, level, use), daemon=True,
                         name=f"voicebox-export-{job.id[:8]}").start()
        return job

    def get(self, project_id: str, job_id: str, *, owner: str = "") -> ExportJob:
        """An export of one of ``owner``'s projects; anyone else's is "does not exist"."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.project_id != project_id or job.owner != owner:
            raise NotFound(f"Export {job_id!r} does not exist.")
        return job

    def file(self, project_id: str, job_id: str, index: int = 0, *, owner: str = "") -> Path:
        job = self.get(project_id, job_id, owner=owner)
        if job.state != "done":
            raise InvalidInput("The export is not finished yet; ask again when its state is done.")
        paths = self._paths.get(job_id, [])
        if not 0 <= index < len(paths):
            last = f" to {len(paths) - 1}" if len(paths) > 1 else ""
            raise NotFound(f"This export has {len(paths)} file(s): ask for index 0{last}, not {index}.")
        if not paths[index].is_file():
            raise NotFound("This export's file is gone (a newer export of the same kind replaced it).")
        return paths[index]

    def wait(self, project_id: str, job_id: str, timeout: float = 120, *, owner: str = "") -> ExportJob:
        """Poll until the job ends (tests)."""
        import time

        deadline = time.monotonic() + timeout
        job = self.get(project_id, job_id, owner=owner)
        while job.state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            job = self.get(project_id, job_id, owner=owner)
        return job

    def running_for(self, owner: str) -> bool:
        """Whether an export of ``owner``'s is being written."""
        with self._lock:
            return any(job.owner == owner and job.state == "running" for job in self._jobs.values())

    def forget(self, owner: str) -> None:
        """Drop ``owner``'s finished jobs (their files go with the owner's folders)."""
        with self._lock:
            for job_id in [jid for jid, job in self._jobs.items() if job.owner == owner]:
                self._jobs.pop(job_id, None)
                self._paths.pop(job_id, None)

    def _set(self, job: ExportJob) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def _run(self, job: ExportJob, fmt: str, subtitles: str, level: str, use: str) -> None:
        def step(name: str) -> None:
            self._set(replace(self.get(job.project_id, job.id, owner=job.owner), step=name))

        try:
            paths = self.projects.export(job.project_id, fmt, subtitles, level, use, step=step, owner=job.owner)
        except VoiceboxError as exc:
            self._set(replace(job, state="failed", step="", message=exc.message))
            return
        except Exception as exc:  # noqa: BLE001 - the job must end, and say so
            self._set(replace(job, state="failed", step="", message=f"The export failed ({type(exc).__name__})."))
            return
        self._paths[job.id] = list(paths)
        self._set(replace(job, state="done", step="", files=tuple(p.name for p in paths)))
