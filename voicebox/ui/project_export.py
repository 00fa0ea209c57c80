"""Export from the Projects tab as a background job: the button answers at once, a timer that
runs only while the export does shows the step (reading the takes, levelling the loudness, timing
the words, encoding), and the download buttons appear when the files are ready. An hour of audio
takes long enough to encode that a spinner on a hanging request would look like a crash.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import VoiceboxError
from .common import UIContext, refusing
from .takes import status_html

AUDIO_CHOICES = [("M4B audiobook (chapters)", "m4b"), ("MP3", "mp3"), ("FLAC", "flac"), ("WAV", "wav"),
                 ("ZIP: one file per block", "zip")]
SUBTITLE_CHOICES = [("SRT", "srt"), ("WebVTT", "vtt"), ("None", "none")]
LEVEL_CHOICES = [("One cue per block", "block"), ("One cue per sentence", "sentence"),
                 ("Word by word (Whisper listens; slower)", "word")]
USE_CHOICES = [("Audiobook (-18 LUFS)", "audiobook"), ("Podcast (-16 LUFS)", "podcast")]


class ExportHandlers:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @refusing
    def start(self, project_id: str, fmt: str, subtitles: str, level: str, use: str) -> tuple[Any, ...]:
        """(job id, line, audio download, subtitles download, export timer on): the job runs on its own."""
        from ..errors import InvalidInput

        if not project_id:
            raise InvalidInput("Create or open a project first.")
        job = self.ctx.studio.exports.start(project_id, fmt, subtitles or "none", level or "block",
                                           use or "audiobook", owner=self.ctx.owner())
        return (job.id, status_html("Exporting: starting…"), gr.update(visible=False, value=None),
                gr.update(visible=False, value=None), gr.Timer(active=True))

    def poll(self, project_id: str, job_id: str) -> tuple[Any, ...]:
        """(job id, line, audio download, subtitles download, export timer) while an export runs,
        and once when it ends, which also stops the timer."""
        stop = gr.Timer(active=False)
        if not project_id or not job_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), stop
        exports, owner = self.ctx.studio.exports, self.ctx.owner()
        try:
            job = exports.get(project_id, job_id, owner=owner)
        except VoiceboxError:  # another project was opened, or the server restarted
            return "", "", gr.update(visible=False), gr.update(visible=False), stop
        if job.state == "running":
            return gr.skip(), status_html(f"Exporting: {job.step}…"), gr.skip(), gr.skip(), gr.skip()
        if job.state == "failed":
            return "", status_html(job.message or "The export failed.", "error"), gr.skip(), gr.skip(), stop
        copies = [self.ctx.temp.copy(exports.file(project_id, job_id, i, owner=owner), owner=owner)
                  for i in range(len(job.files))]
        audio = gr.update(value=copies[0], visible=True, label=f"Download {job.files[0]}")
        subs = (gr.update(value=copies[1], visible=True, label=f"Download {job.files[1]}") if len(copies) > 1
                else gr.update(visible=False, value=None))
        return "", status_html(f"Exported {', '.join(job.files)}.", "ok"), audio, subs, stop
