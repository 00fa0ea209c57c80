"""Export of a rendered project: one audio file (WAV, FLAC, MP3, M4B with chapters), subtitles, a ZIP.

Pure functions over rendered block files: no store, UI or model code, so the REST job, the UI and
the benchmark call the same thing.

Why it is built this way:

* Positions are counted in samples while the blocks are joined and only turned into seconds at
  the end, so a chapter or a cue lands on the exact sample its block starts at, however long the
  project (no accumulated rounding).
* Loudness is normalised across the whole project, not per block (EBU R128 integrated loudness
  with ``pyloudnorm``), so the level does not jump between blocks. Speech normalised to -16..-20
  LUFS usually peaks above -1 dBTP, and a plain gain reduction to fix that would miss the target
  loudness, so a true-peak limiter follows: the peak of every sample is estimated on a 4x
  oversampled copy (``soxr``, as BS.1770-4 Annex 2 does), the gain that keeps it under the ceiling
  is held across a few milliseconds (a moving minimum) and smoothed (a moving average no wider
  than the hold, so the smoothed gain never exceeds what a peak needs), with ``scipy.ndimage``.
  The loudness is measured again after limiting and the make-up gain corrected (a few rounds).
* Every file is written to a temporary file beside the target and renamed over it, so a crash
  never leaves half an audiobook where a previous export was.
* M4B chapters are written with PyAV (``OutputContainer.set_chapters``, PyAV >= 14); with an
  older PyAV the ``ffmpeg`` program muxes them from an FFMETADATA file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from .. import audio
from ..atomic import replacing
from ..errors import InvalidInput, ModelUnavailable
from .subtitles import subtitles

AUDIO_FORMATS = ("wav", "flac", "mp3", "m4b", "m4a")
OVERSAMPLE = 4
HOLD_S = 0.005  # limiter: the gain needed by a peak is held this long either side, then smoothed
AAC_BIT_RATE = 64_000  # mono speech: transparent at 64 kb/s
_CHUNK = 1 << 20  # samples per piece when oversampling / encoding (bounded memory for long projects)

Chapter = tuple[str, float, float]  # title, start, end (seconds)
_SOUNDFILE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III")}

__all__ = ["RenderedBlock", "Timeline", "assemble", "export_audio", "export_zip", "slug", "subtitles"]


@dataclass(frozen=True)
class RenderedBlock:
    """One rendered block: its audio file (24 kHz mono PCM16 WAV from voicebox), the silence after
    it, the chapter it opens (when non-empty) and optional sentence times within its own audio."""

    index: int
    text: str
    audio: Path
    pause: float = 0.0
    chapter: str = ""
    sentences: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class Timeline:
    """Where everything landed in the exported audio, in seconds."""

    blocks: tuple[tuple[int, float, float], ...]  # (index, start, end)
    chapters: tuple[tuple[str, float, float], ...]  # (title, start, end)
    duration: float


# ---- assembly ---------------------------------------------------------------------------------
def assemble(
    blocks: Sequence[RenderedBlock], target_lufs: float = -18.0, true_peak_db: float = -1.0
) -> tuple[np.ndarray, int, Timeline]:
    """Join the blocks with their pauses, normalise to ``target_lufs`` and limit the true peak to
    ``true_peak_db`` dBTP. Returns (float32 mono samples, sample rate, timeline).

    The rate is the first block's; a block at another rate is resampled to it. A chapter runs
    from the start of the block that opens it to the start of the next chapter (or the end).

    Raises:
        InvalidInput: no blocks, a repeated index, a negative pause or an unreadable block file.
    """
    _check_blocks(blocks)
    if not -70.0 <= target_lufs <= 0.0 or true_peak_db > 0.0:
        raise InvalidInput(
            "The loudness target must be between -70 and 0 LUFS and the peak ceiling at most 0 dBTP."
        )
    pieces: list[np.ndarray] = []
    placed: list[tuple[int, int, int]] = []
    opened: list[tuple[str, int]] = []
    rate = 0
    position = 0
    for block in blocks:
        samples, block_rate = _read_block(block)
        rate = rate or block_rate
        samples = audio.resample(samples, block_rate, rate)
        if block.chapter.strip():
            opened.append((block.chapter.strip(), position))
        placed.append((block.index, position, position + len(samples)))
        gap = np.zeros(round(block.pause * rate), dtype=np.float32)
        pieces += [samples, gap]
        position += len(samples) + len(gap)
    joined = np.concatenate(pieces) if position else np.zeros(0, dtype=np.float32)
    leveled = normalise(joined, rate, target_lufs, true_peak_db)
    chapters = tuple(
        (title, start / rate, (opened[i + 1][1] if i + 1 < len(opened) else position) / rate)
        for i, (title, start) in enumerate(opened)
    )
    timeline = Timeline(
        blocks=tuple((index, start / rate, end / rate) for index, start, end in placed),
        chapters=chapters,
        duration=position / rate,
    )
    return leveled, rate, timeline


def normalise(samples: np.ndarray, rate: int, target_lufs: float, true_peak_db: float) -> np.ndarray:
    """Integrated loudness to ``target_lufs`` with the true peak at most ``true_peak_db`` dBTP
    (see the module docstring for the limiter). Silence is returned unchanged."""
    loudness = integrated_loudness(samples, rate)
    if not np.isfinite(loudness):
        return samples.astype(np.float32)
    ceiling = 10 ** ((true_peak_db - 0.1) / 20)  # 0.1 dB margin for the encoder's own rounding
    peaks = true_peaks(samples, rate)
    gain = 10 ** ((target_lufs - loudness) / 20)
    if float(peaks.max()) * gain <= ceiling:  # no peak to limit: a plain gain is exact
        return (samples * np.float32(gain)).astype(np.float32)
    hold = max(1, int(HOLD_S * rate))
    gain_db, tried = 20 * np.log10(gain), []
    for _ in range(8):  # limiting lowers the loudness: solve for the make-up gain (secant steps)
        need = np.minimum(1.0, ceiling / np.maximum(peaks * 10 ** (gain_db / 20), 1e-12)).astype(np.float32)
        out = samples * (np.float32(10 ** (gain_db / 20)) * _smooth_gain(need, hold))
        error = target_lufs - integrated_loudness(out, rate)
        if abs(error) < 0.05:
            break
        tried.append((gain_db, error))
        step = error  # first step: as if unlimited; then the measured slope (~0.2 LU/dB when limiting hard)
        if len(tried) > 1 and tried[-2][1] != error:
            step = error * (gain_db - tried[-2][0]) / (tried[-2][1] - error)
        gain_db += float(np.clip(step, -12.0, 12.0))
    peak = float(true_peaks(out, rate).max(initial=0.0))
    if peak > ceiling:  # the gain curve's own modulation can add a hair; remove it
        out = out * np.float32(ceiling / peak)
    return out.astype(np.float32)


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """BS.1770 / EBU R128 integrated loudness in LUFS (-inf for silence or very short audio)."""
    import pyloudnorm

    if len(samples) < int(0.4 * rate):
        return float("-inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))


def true_peaks(samples: np.ndarray, rate: int) -> np.ndarray:
    """Per sample, the largest magnitude of the signal around it on a 4x oversampled copy
    (the BS.1770-4 true-peak estimate), computed in overlapping pieces to bound memory."""
    import soxr

    x = np.asarray(samples, dtype=np.float32)
    out = np.abs(x)
    pad = 2048
    for start in range(0, len(x), _CHUNK):
        lo, hi = max(0, start - pad), min(len(x), start + _CHUNK + pad)
        up = soxr.resample(x[lo:hi], rate, rate * OVERSAMPLE, quality="HQ")
        n = min(len(up) // OVERSAMPLE, hi - lo)
        grouped = np.abs(up[: n * OVERSAMPLE]).reshape(n, OVERSAMPLE).max(axis=1)
        a, b = start - lo, min(n, start - lo + _CHUNK)
        out[start : start + (b - a)] = np.maximum(out[start : start + (b - a)], grouped[a:b])
    return out


def _smooth_gain(need: np.ndarray, hold: int) -> np.ndarray:
    """A limiter's gain curve: the moving minimum of ``need`` over +-hold samples, then its moving
    average over +-hold. Each averaged value is a mean of minima whose windows all contain the
    sample, so the result never exceeds ``need`` anywhere: no peak escapes."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    if need.min(initial=1.0) >= 1.0:
        return np.ones_like(need)
    held = minimum_filter1d(need, size=2 * hold + 1, mode="nearest")
    return np.minimum(uniform_filter1d(held, size=2 * hold + 1, mode="nearest"), need).astype(np.float32)


# ---- audio files ------------------------------------------------------------------------------
def export_audio(
    samples: np.ndarray, rate: int, timeline: Timeline, fmt: str, out: Path, title: str = ""
) -> Path:
    """Write the assembled audio to ``out`` as ``fmt``: "wav" (PCM16), "flac", "mp3", or "m4b" /
    "m4a" (AAC in MP4, with ``timeline.chapters`` as chapter markers). ``title`` is stored as
    metadata where the format has a title tag. Written atomically. Returns ``out``.

    Raises:
        InvalidInput: unknown format or no audio.
        ModelUnavailable: M4B needs PyAV with chapter support or the ffmpeg program, and neither is here.
    """
    fmt = (fmt or "").lower()
    if fmt not in AUDIO_FORMATS:
        raise InvalidInput(f"Unknown export format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}.")
    samples = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if not samples.size or rate <= 0:
        raise InvalidInput("There is no audio to export; render the project first.")
    out = Path(out)
    with replacing(out) as tmp:
        if fmt in ("m4b", "m4a"):
            _write_m4b(samples, rate, timeline.chapters, tmp, title)
        else:
            _write_soundfile(samples, rate, fmt, tmp, title)
    return out


def _write_soundfile(samples: np.ndarray, rate: int, fmt: str, path: Path, title: str) -> None:
    """WAV / FLAC as PCM16 (``audio.pcm16``, voicebox's one rounding rule), MP3 via libsndfile."""
    container, subtype = _SOUNDFILE[fmt]
    data = audio.pcm16(samples) if subtype == "PCM_16" else samples
    with sf.SoundFile(path, "w", rate, 1, subtype=subtype, format=container) as handle:
        if title:
            try:
                handle.title = title
            except RuntimeError:  # a libsndfile build without tags for this format: audio still fine
                pass
        for start in range(0, len(data), _CHUNK):
            handle.write(data[start : start + _CHUNK])


def _write_m4b(samples: np.ndarray, rate: int, chapters: Sequence[Chapter], path: Path, title: str) -> None:
    import av

    if chapters and not hasattr(av.container.OutputContainer, "set_chapters"):  # PyAV < 14
        return _write_m4b_ffmpeg(samples, rate, chapters, path, title)
    container = av.open(str(path), "w", format="ipod")
    try:
        if title:
            container.metadata["title"] = title
        if chapters:
            ms = Fraction(1, 1000)
            container.set_chapters([_chapter_dict(i, chapter, ms) for i, chapter in enumerate(chapters)])
        stream = container.add_stream("aac", rate=rate, layout="mono")
        stream.bit_rate = AAC_BIT_RATE
        for start in range(0, len(samples), _CHUNK):
            piece = samples[None, start : start + _CHUNK]
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()


def _chapter_dict(i: int, chapter: Chapter, base: Fraction) -> dict:
    name, start, end = chapter
    times = {"start": round(start / base), "end": round(end / base), "time_base": base}
    return {"id": i + 1, **times, "metadata": {"title": name}}


def _write_m4b_ffmpeg(
    samples: np.ndarray, rate: int, chapters: Sequence[Chapter], path: Path, title: str
) -> None:
    """The fallback: the ffmpeg program muxes AAC with chapters from an FFMETADATA file."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ModelUnavailable(
            "M4B chapters need PyAV 14 or newer (pip install -U av) or the ffmpeg program "
            "(e.g. apt install ffmpeg); neither is available. Export WAV, FLAC or MP3 meanwhile."
        )
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        wav, meta = Path(work) / "in.wav", Path(work) / "chapters.txt"
        _write_soundfile(samples, rate, "wav", wav, "")
        meta.write_text(ffmetadata(title, chapters), encoding="utf-8")
        cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(wav), "-f", "ffmetadata", "-i", str(meta)]
        cmd += ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
        cmd += ["-c:a", "aac", "-b:a", str(AAC_BIT_RATE), "-f", "ipod", str(path)]
        result = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise ModelUnavailable(f"ffmpeg could not write the M4B file: {result.stderr.strip()[-500:]}")


def ffmetadata(title: str, chapters: Sequence[Chapter]) -> str:
    """An FFMETADATA1 document: the title and one [CHAPTER] per chapter, times in milliseconds."""

    def esc(value: str) -> str:
        return re.sub(r"([=;#\\\n])", r"\\\1", value)

    lines = [";FFMETADATA1"] + ([f"title={esc(title)}"] if title else [])
    for name, start, end in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(start * 1000)}", f"END={round(end * 1000)}"]
        lines.append(f"title={esc(name)}")
    return "\n".join(lines) + "\n"


# ---- ZIP --------------------------------------------------------------------------------------
def export_zip(
    blocks: Sequence[RenderedBlock],
    timeline: Timeline,
    out: Path,
    project_json: dict,
    subtitle_fmt: str | None = "srt",
    subtitle_level: str = "block",
) -> Path:
    """A ZIP with each block's WAV as rendered (``001-ask-not-what.wav``: order, then a slug of the
    text), the subtitles (``subtitles.srt``/``.vtt`` on the timeline's timings, unless
    ``subtitle_fmt`` is None) and ``project.json`` (``project_json``, to import again). Atomic.

    Raises:
        InvalidInput: no blocks, a repeated index, a missing block file or an unknown subtitle format.
    """
    _check_blocks(blocks)
    captions = subtitles(blocks, timeline, subtitle_fmt, subtitle_level) if subtitle_fmt else None
    document = json.dumps(project_json, ensure_ascii=False, indent=2)
    out = Path(out)
    with replacing(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for block in blocks:
            if not Path(block.audio).is_file():
                raise InvalidInput(f"Block {block.index + 1} has no rendered audio; render it first.")
            # WAV barely deflates: stored is as small and much faster for an hour of audio.
            archive.write(block.audio, block_filename(block), compress_type=zipfile.ZIP_STORED)
        if captions is not None:
            archive.writestr(f"subtitles.{subtitle_fmt.lower()}", captions)
        archive.writestr("project.json", document)
    return out


def block_filename(block: RenderedBlock) -> str:
    """``{index+1:03d}-{slug}.wav``: sorts in project order, readable in a file browser."""
    return f"{block.index + 1:03d}-{slug(block.text)}.wav"


def slug(text: str, limit: int = 40, fallback: str = "block") -> str:
    """Lower-case ASCII words of ``text`` joined by "-", whole words only, at most ``limit``
    characters (``fallback`` when nothing is left, e.g. text in a non-Latin script). The one
    file-name rule for blocks, project exports, batch items and the my-data ZIP."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    out = ""
    for word in re.findall(r"[a-z0-9]+", ascii_text):
        candidate = f"{out}-{word}" if out else word[:limit]
        if len(candidate) > limit:
            break
        out = candidate
    return out or fallback


# ---- helpers ----------------------------------------------------------------------------------
def _check_blocks(blocks: Sequence[RenderedBlock]) -> None:
    if not blocks:
        raise InvalidInput("The project has no rendered blocks to export; add and render blocks first.")
    seen: set[int] = set()
    for block in blocks:
        if block.index in seen:
            raise InvalidInput(f"Block index {block.index} appears twice; each block needs its own index.")
        seen.add(block.index)
        if block.pause < 0:
            raise InvalidInput(f"Block {block.index + 1} has a negative pause ({block.pause} s).")


def _read_block(block: RenderedBlock) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(block.audio, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise InvalidInput(
            f"Block {block.index + 1}'s audio cannot be read ({block.audio}); render it again."
        ) from exc
    return audio.to_mono(samples), int(rate)
