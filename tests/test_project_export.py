"""Project export: timeline, loudness, every audio format decoded by a real decoder (PyAV), M4B
chapters, SRT/VTT cues, the ZIP. Real speech: the JFK recording cut into four blocks."""

from __future__ import annotations

import itertools
import json
import re
import zipfile
from pathlib import Path

import av
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from voicebox import audio
from voicebox.errors import InvalidInput
from voicebox.projects import export as export_module
from voicebox.projects.export import (
    RenderedBlock,
    Timeline,
    assemble,
    export_audio,
    export_zip,
    slug,
    subtitles,
)
from voicebox.projects.subtitles import wrap

FRAME = 0.080  # one frame of the 12.5 Hz codec: the tolerance the issue asks for
RATE = audio.MODEL_SAMPLE_RATE
TEXTS = (
    "And so, my fellow Americans,",
    "ask not what your country can do for you,",
    (
        "ask what you can do for your country. This block has a much longer text so that its cue "
        "needs more than two lines of subtitles and is shared out."
    ),
    "Thank you.",
)
PAUSES = (0.4, 0.25, 1.0, 0.3)
CHAPTERS = ("Opening", "", "The Ask", "")


@pytest.fixture(scope="module")
def blocks(jfk_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[RenderedBlock]:
    speech = audio.load_mono(jfk_path)
    bounds = [0.0, 3.0, 6.5, 9.0, 11.0]
    folder = tmp_path_factory.mktemp("blocks")
    out = []
    for i, text in enumerate(TEXTS):
        piece = speech[int(bounds[i] * RATE) : int(bounds[i + 1] * RATE)]
        path = folder / f"block-{i}.wav"
        path.write_bytes(audio.wav_bytes(piece * 0.3))  # quieter than the target: normalisation must act
        length = len(piece) / RATE
        sentences = ((text[:10], 0.1, length / 2), (text[10:], length / 2, length)) if i == 0 else ()
        out.append(RenderedBlock(i, text, path, PAUSES[i], CHAPTERS[i], sentences))
    return out


@pytest.fixture(scope="module")
def assembled(blocks: list[RenderedBlock]) -> tuple[np.ndarray, int, Timeline]:
    return assemble(blocks, target_lufs=-18.0, true_peak_db=-1.0)


def _decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        count = sum(frame.samples for frame in container.decode(stream))
        return count / stream.codec_context.sample_rate


def test_timeline_matches_durations_and_pauses(blocks, assembled) -> None:
    samples, rate, timeline = assembled
    assert rate == RATE
    position = 0.0
    for block, (index, start, end) in zip(blocks, timeline.blocks):
        length = sf.info(str(block.audio)).duration
        assert index == block.index
        assert start == pytest.approx(position, abs=FRAME)
        assert end == pytest.approx(position + length, abs=FRAME)
        position += length + block.pause
    assert timeline.duration == pytest.approx(position, abs=FRAME)
    assert len(samples) / rate == pytest.approx(timeline.duration, abs=1 / rate)
    starts = {index: start for index, start, _ in timeline.blocks}
    assert [title for title, _, _ in timeline.chapters] == ["Opening", "The Ask"]
    assert timeline.chapters[0][1:] == (starts[0], starts[2])
    assert timeline.chapters[1][1:] == (starts[2], timeline.duration)


def test_loudness_on_target_and_true_peak_under_ceiling(assembled) -> None:
    samples, rate, _ = assembled
    loudness = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    assert loudness == pytest.approx(-18.0, abs=0.5)
    true_peak = np.abs(resample_poly(samples.astype(np.float64), 4, 1)).max()
    assert 20 * np.log10(true_peak) <= -1.0


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "m4b"])
def test_each_format_decodes_to_the_duration(assembled, fmt: str, tmp_path: Path) -> None:
    samples, rate, timeline = assembled
    out = export_audio(samples, rate, timeline, fmt, tmp_path / f"book.{fmt}", title="JFK")
    assert out.exists() and not list(tmp_path.glob(".*.tmp"))
    assert _decoded_seconds(out) == pytest.approx(timeline.duration, abs=FRAME)


def test_m4b_has_the_chapters_and_title(assembled, tmp_path: Path) -> None:
    samples, rate, timeline = assembled
    out = export_audio(samples, rate, timeline, "m4b", tmp_path / "book.m4b", title="Inaugural Address")
    with av.open(str(out)) as container:
        found = container.chapters()
        assert container.metadata.get("title") == "Inaugural Address"
    assert [c["metadata"]["title"] for c in found] == ["Opening", "The Ask"]
    for chapter, (_, start, end) in zip(found, timeline.chapters):
        assert float(chapter["start"] * chapter["time_base"]) == pytest.approx(start, abs=FRAME)
        assert float(chapter["end"] * chapter["time_base"]) == pytest.approx(end, abs=FRAME)


def test_m4b_through_the_ffmpeg_program(assembled, tmp_path: Path) -> None:
    """The fallback for PyAV without set_chapters writes the same chapters."""
    if export_module.shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    samples, rate, timeline = assembled
    out = tmp_path / "book.m4b"
    export_module._write_m4b_ffmpeg(samples, rate, timeline.chapters, out, "A; title=with #specials")
    with av.open(str(out)) as container:
        found = container.chapters()
        assert container.metadata.get("title") == "A; title=with #specials"
    assert [c["metadata"]["title"] for c in found] == ["Opening", "The Ask"]
    assert float(found[1]["start"] * found[1]["time_base"]) == pytest.approx(
        timeline.chapters[1][1], abs=FRAME
    )
    assert _decoded_seconds(out) == pytest.approx(timeline.duration, abs=FRAME)


SRT_CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n((?:[^\n]{1,42}\n?){1,2})"
)
VTT_CUE = re.compile(
    r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n((?:[^\n]{1,42}\n?){1,2})"
)


def _parse(text: str, fmt: str) -> list[tuple[float, float, str]]:
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n")
        text = text[len("WEBVTT\n\n") :]
    pattern = SRT_CUE if fmt == "srt" else VTT_CUE
    cues = []
    for number, chunk in enumerate(text.strip("\n").split("\n\n"), start=1):
        match = pattern.fullmatch(chunk + "\n")
        assert match, f"cue {number} is malformed: {chunk!r}"
        groups = match.groups()[1:] if fmt == "srt" else match.groups()
        if fmt == "srt":
            assert int(match.group(1)) == number
        h0, m0, s0, ms0, h1, m1, s1, ms1 = map(int, groups[:8])
        start, end = h0 * 3600 + m0 * 60 + s0 + ms0 / 1000, h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        assert start < end
        cues.append((start, end, groups[8].strip()))
    return cues


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_block_cues_line_up_with_blocks(blocks, assembled, fmt: str) -> None:
    _, _, timeline = assembled
    cues = _parse(subtitles(blocks, timeline, fmt), fmt)
    starts = [c[0] for c in cues]
    ends = [c[1] for c in cues]
    for index, start, end in timeline.blocks:
        assert min(abs(s - start) for s in starts) < FRAME
        assert min(abs(e - end) for e in ends) < FRAME
    assert len(cues) > len(blocks)  # the long block is shared over several two-line cues
    assert " ".join(c[2].replace("\n", " ") for c in cues) == " ".join(" ".join(TEXTS).split())
    assert all(b[0] >= a[1] - 1e-3 for a, b in itertools.pairwise(cues))  # no overlaps


def test_sentence_cues_use_sentence_times(blocks, assembled) -> None:
    _, _, timeline = assembled
    cues = _parse(subtitles(blocks, timeline, "srt", level="sentence"), "srt")
    first_start = timeline.blocks[0][1]
    length = timeline.blocks[0][2] - first_start
    assert cues[0][0] == pytest.approx(first_start + 0.1, abs=0.002)
    assert cues[1][0] == pytest.approx(first_start + length / 2, abs=0.002)
    assert cues[2][0] == pytest.approx(timeline.blocks[1][1], abs=0.002)  # block 1: no sentences, one cue


def test_wrap_balances_two_lines() -> None:
    assert wrap("ask not what your country can do for you, ask what you can") == [
        "ask not what your country can\ndo for you, ask what you can"
    ]
    assert wrap("Short.") == ["Short."]
    assert all(len(line) <= 42 for group in wrap("word " * 60) for line in group.split("\n"))


def test_zip_holds_blocks_subtitles_and_project(blocks, assembled, tmp_path: Path) -> None:
    _, _, timeline = assembled
    project = {"name": "JFK", "blocks": [{"text": t, "pause": p} for t, p in zip(TEXTS, PAUSES)], "é": "ü"}
    out = export_zip(blocks, timeline, tmp_path / "project.zip", project, subtitle_fmt="vtt")
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names == [
            "001-and-so-my-fellow-americans.wav",
            "002-ask-not-what-your-country-can-do-for-you.wav",  # 40 characters
            "003-ask-what-you-can-do-for-your-country.wav",
            "004-thank-you.wav",
            "subtitles.vtt",
            "project.json",
        ]
        assert json.loads(archive.read("project.json")) == project
        assert archive.read(names[1]) == blocks[1].audio.read_bytes()
        assert archive.read("subtitles.vtt").decode() == subtitles(blocks, timeline, "vtt")


def test_slug() -> None:
    assert slug("Ça va? Très BIEN!") == "ca-va-tres-bien"
    assert slug("日本語") == "block"
    assert len(slug("a" * 100)) == 40


def test_bad_input_is_refused(blocks, assembled, tmp_path: Path) -> None:
    samples, rate, timeline = assembled
    with pytest.raises(InvalidInput, match="no rendered blocks"):
        assemble([])
    with pytest.raises(InvalidInput, match="Unknown export format 'ogg'"):
        export_audio(samples, rate, timeline, "ogg", tmp_path / "x.ogg")
    with pytest.raises(InvalidInput, match="Unknown subtitle format 'ass'"):
        subtitles(blocks, timeline, "ass")
    with pytest.raises(InvalidInput, match="no rendered blocks"):
        export_zip([], timeline, tmp_path / "x.zip", {})
    with pytest.raises(InvalidInput, match="appears twice"):
        assemble([blocks[0], blocks[0]])
    with pytest.raises(InvalidInput, match="cannot be read"):
        assemble([RenderedBlock(0, "x", tmp_path / "missing.wav")])
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_limiter_keeps_loudness_with_a_low_ceiling(blocks) -> None:
    """JFK at -18 LUFS peaks near -4.6 dBTP; a -8 dBTP ceiling makes the limiter work, and the
    loudness must still land on the target (a plain gain reduction would miss it by ~3 LU)."""
    samples, rate, _ = assemble(blocks, target_lufs=-18.0, true_peak_db=-8.0)
    loudness = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    assert loudness == pytest.approx(-18.0, abs=0.5)
    true_peak = np.abs(resample_poly(samples.astype(np.float64), 4, 1)).max()
    assert 20 * np.log10(true_peak) <= -8.0


def test_vtt_escapes_markup_characters() -> None:
    timeline = Timeline(blocks=((0, 0.0, 1.5),), chapters=(), duration=1.5)
    block = RenderedBlock(0, "Q&A: x < y -> z", Path("unused.wav"))
    assert (
        subtitles([block], timeline, "vtt")
        == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nQ&amp;A: x &lt; y -&gt; z\n"
    )
    assert subtitles([block], timeline, "srt") == "1\n00:00:00,000 --> 00:00:01,500\nQ&A: x < y -> z\n"
