"""A rendered project out of voicebox: one audio file with chapters, subtitles, or a ZIP.

The glue between the project records and :mod:`.export` / :mod:`.subtitles`: each block's take
becomes a :class:`~voicebox.projects.export.RenderedBlock` (its sentences' places come from the
take's chunk records, so sentence-level subtitles need no second pass; word-level ones do: a
Whisper pass over each take, see :mod:`.word_timings`), and the files land in
``exports/<project id>/`` in the owner's folder (:mod:`voicebox.owners`), written atomically,
replaced by the next export of that kind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..owners import root as owner_root
from ..take_effects import played_file
from .export import RenderedBlock, assemble, export_audio, export_zip, slug
from .subtitles import LEVELS, subtitles
from .word_timings import time_words

if TYPE_CHECKING:
    from .records import Project
    from .service import Projects

AUDIO_FORMATS = ("wav", "flac", "mp3", "m4b")
SUBTITLE_FORMATS = ("srt", "vtt", "none")
#: Loudness targets by use (EBU R128): podcasts are louder than audiobooks.
TARGETS = {"audiobook": -18.0, "podcast": -16.0}


def check_request(projects: Projects, project_id: str, fmt: str, subtitle_fmt: str, use: str,
                  level: str = "block", *, owner: str = "") -> Project:
    """Refuse an export that cannot be made, before any work: the formats, the subtitle level,
    the target, and a project whose every block is rendered."""
    fmt, subtitle_fmt = (fmt or "").lower(), (subtitle_fmt or "none").lower()
    if fmt not in AUDIO_FORMATS + ("zip",):
        raise InvalidInput(f"Export as one of {', '.join(AUDIO_FORMATS + ('zip',))}, not {fmt!r}.")
    if subtitle_fmt not in SUBTITLE_FORMATS:
        raise InvalidInput(f"Subtitles are srt, vtt or none, not {subtitle_fmt!r}.")
    if level not in LEVELS:
        raise InvalidInput(f"The subtitle level is one of {', '.join(LEVELS)}, not {level!r}.")
    if use not in TARGETS:
        raise InvalidInput(f"The loudness target is one of {', '.join(TARGETS)}, not {use!r}.")
    project = projects.store.get(project_id, owner)
    if not project.blocks:
        raise InvalidInput("The project has no blocks to export.")
    waiting = [b for b in project.blocks if b.status != "rendered"]
    if waiting:
        raise InvalidInput(f"Render the project first: {len(waiting)} block(s) are not rendered yet.")
    return project


def export_project(projects: Projects, project_id: str, fmt: str = "m4b", subtitle_fmt: str = "srt",
                   level: str = "block", use: str = "audiobook", step: Callable[[str], None] | None = None, *,
                   owner: str = "") -> list[Path]:
    """Export a rendered project; returns the files written (the audio or ZIP, then subtitles).
    ``step`` hears each stage as it starts (reading, timing the words, loudness, encoding).

    At ``level="word"`` (with subtitles) Whisper hears every take first, before the loudness and
    encoding work, so a Whisper that cannot be loaded fails the export at once with a message
    that says to choose block or sentence level (:class:`~voicebox.errors.ModelUnavailable`)."""
    project = check_request(projects, project_id, fmt, subtitle_fmt, use, level, owner=owner)
    fmt, subtitle_fmt = fmt.lower(), (subtitle_fmt or "none").lower()
    say = step or (lambda name: None)
    say("reading the takes")
    studio = projects.studio
    blocks = []
    for index, block in enumerate(project.blocks):
        take = studio.get_generation(block.generation_id, owner=owner)
        played = played_file(studio, take)  # with the block's effect, when it has one
        scale = _length(played) / _length(studio.take_file(take)) if take.effects is not None else 1.0
        sentences = tuple((c.text, round(c.offset * scale, 3), round((c.offset + c.duration) * scale, 3))
                          for c in take.chunks)  # an effect that changes the speed moves the cues with it
        blocks.append(RenderedBlock(index, block.text, played, block.pause, block.chapter, sentences))
    if level == "word" and subtitle_fmt != "none":
        languages = [block.language or project.language for block in project.blocks]
        blocks = time_words(studio.asr, blocks, languages, say)
    folder = owner_root(studio.settings.data_dir, owner) / "exports" / project.id
    folder.mkdir(parents=True, exist_ok=True)
    name = slug(project.title, fallback="project")
    say("levelling the loudness")
    samples, rate, timeline = assemble(blocks, target_lufs=TARGETS[use])
    say("writing the zip" if fmt == "zip" else f"encoding {fmt}")
    if fmt == "zip":
        out = export_zip(blocks, timeline, folder / f"{name}.zip", project.to_dict(),
                         None if subtitle_fmt == "none" else subtitle_fmt, level)
        return [out]
    written = [export_audio(samples, rate, timeline, fmt, folder / f"{name}.{fmt}", project.title)]
    if subtitle_fmt != "none":
        path = folder / f"{name}.{subtitle_fmt}"
        from ..atomic import atomic_write_bytes

        atomic_write_bytes(path, subtitles(blocks, timeline, subtitle_fmt, level).encode("utf-8"))
        written.append(path)
    return written


def _length(path: Path) -> float:
    """Seconds of audio in a WAV file (its header; nothing is decoded)."""
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate if info.samplerate else 0.0
