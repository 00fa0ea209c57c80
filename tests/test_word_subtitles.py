"""Word-level subtitles: cue grouping and WebVTT word tags on hand-made word lists (no model), the
block's own words aligned to hand-made heard words (matched, misheard, missed, extra, nothing
alike), then real Whisper (tiny.en) word timings on real speech (JFK) placed in an assembled
timeline, the cues reading the true transcript, then a project rendered with espeak-ng and exported
at level "word" through the service, the export jobs and REST, the cues reading the blocks' words,
and a Whisper that cannot be loaded failing the export with a message a person can act on.
"""

from __future__ import annotations

import itertools
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support.espeak_backend import EspeakBackend
from voicebox import audio
from voicebox.config import Settings
from voicebox.engines.asr import WhisperEngine, Word
from voicebox.errors import InvalidInput, ModelUnavailable
from voicebox.projects.export import RenderedBlock, Timeline, assemble, subtitles
from voicebox.projects.word_align import MIN_WORD_S, Alignment, align, normalise
from voicebox.projects.word_timings import TimedBlock, WordCue, group, place, split_lines, time_words
from voicebox.services import Studio

FRAME = 0.080  # one frame of the 12.5 Hz codec: the tolerance the issue asks for
RATE = audio.MODEL_SAMPLE_RATE
JFK = ("And so, my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")
CUE = re.compile(r"(?:(\d+)\n)?(\d\d:\d\d:\d\d[.,]\d{3}) --> (\d\d:\d\d:\d\d[.,]\d{3})\n((?:[^\n]+\n?){1,2})")
TAG = re.compile(r"<(\d\d:\d\d:\d\d\.\d{3})>")


def seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse(text: str, fmt: str) -> list[tuple[float, float, str]]:
    """(start, end, payload) of each cue; every cue well formed, lines at most 42 visible
    characters (timestamp tags do not count), SRT numbered from 1."""
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n")
        text = text[len("WEBVTT\n\n"):]
    cues = []
    for number, chunk in enumerate(text.strip("\n").split("\n\n"), start=1):
        match = CUE.fullmatch(chunk + "\n")
        assert match, f"cue {number} is malformed: {chunk!r}"
        if fmt == "srt":
            assert int(match.group(1)) == number and "," in match.group(2)
        payload = match.group(4).strip("\n")
        assert all(len(TAG.sub("", line)) <= 42 for line in payload.split("\n")), payload
        cues.append((seconds(match.group(2)), seconds(match.group(3)), payload))
    return cues


def words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(text, start, end, 0.9) for text, start, end in spec]


# ---- grouping and tags (no model) ---------------------------------------------------------------
def test_cues_break_at_sentence_ends_gaps_and_two_lines() -> None:
    heard = words(("Hello", 0.0, 0.4), ("there.", 0.4, 0.8), ("How", 0.9, 1.1), ("are", 1.1, 1.3),
                  ("you", 1.3, 1.5), ("after", 2.1, 2.4), ("a", 2.4, 2.5), ("pause?", 2.5, 2.9),
                  ("Yes", 3.0, 3.3))
    cues = group(heard)  # a sentence end, a 0.6 s silence, a question mark
    assert [cue.plain() for cue in cues] == ["Hello there.", "How are you", "after a pause?", "Yes"]
    assert [(cue.start, cue.end) for cue in cues] == [(0.0, 0.8), (0.9, 1.5), (2.1, 2.9), (3.0, 3.3)]
    assert [c.plain() for c in group(heard, gap=1.0)] == ["Hello there.", "How are you after a pause?", "Yes"]

    long = [Word(f"word{i:02d}", i * 0.3, i * 0.3 + 0.25) for i in range(30)]  # 6 characters each
    cues = group(long)
    assert [len(cue.lines) for cue in cues] == [2, 2, 1]  # 12 words (2 x 41 characters) fit a cue
    assert all(len(" ".join(w.text for w in line)) <= 42 for cue in cues for line in cue.lines)
    assert [w for cue in cues for line in cue.lines for w in line] == long  # nothing lost, in order
    assert all(b.start >= a.end for a, b in itertools.pairwise(cues))


def test_lines_are_balanced_and_a_long_word_stays_whole() -> None:
    phrase = "ask not what your country can do for you, ask what you can"
    heard = words(*((w, 0.0, 0.1) for w in phrase.split()))
    lines = split_lines(heard)
    assert lines is not None
    assert [" ".join(w.text for w in line) for line in lines] == [
        "ask not what your country can", "do for you, ask what you can"]
    assert split_lines(words(("short", 0, 1))) == (tuple(words(("short", 0, 1))),)
    giant = words(("x" * 60, 0.0, 1.0))
    assert group(giant) == [WordCue((tuple(giant),))]
    assert split_lines(words(*(("abcdefghij", 0, 1),) * 8)) is None  # 87 characters: no two lines


def test_vtt_marks_each_word_and_srt_is_plain() -> None:
    timeline = Timeline(blocks=((0, 10.0, 14.0),), chapters=(), duration=14.0)
    heard = words(("Q&A:", 0.2, 0.6), ("x", 0.6, 0.8), ("<", 0.8, 0.9), ("y.", 0.9, 1.3),
                  ("Next", 1.5, 1.8), ("one", 1.8, 2.1))
    block = TimedBlock(0, "Q&A: x < y. Next one", Path("unused.wav"), words=tuple(heard))
    assert subtitles([block], timeline, "vtt", level="word") == (
        "WEBVTT\n\n"
        "00:00:10.200 --> 00:00:11.300\nQ&amp;A: <00:00:10.600>x <00:00:10.800>&lt; <00:00:10.900>y.\n\n"
        "00:00:11.500 --> 00:00:12.100\nNext <00:00:11.800>one\n"
    )
    assert subtitles([block], timeline, "srt", level="word") == (
        "1\n00:00:10,200 --> 00:00:11,300\nQ&A: x < y.\n\n2\n00:00:11,500 --> 00:00:12,100\nNext one\n"
    )
    # A tag must be later than the cue start and the tag before it: a word at the same millisecond
    # is left untagged, and lights up with the word before it.
    same = WordCue((tuple(words(("a", 1.0, 1.0), ("b", 1.0, 1.2), ("c", 1.2, 1.5))),))
    assert same.marked() == "a b <00:00:01.200>c"
    two_lines = WordCue((tuple(words(("one", 0.0, 0.5))), tuple(words(("two", 0.5, 1.0)))))
    assert two_lines.marked() == "one\n<00:00:00.500>two" and two_lines.plain() == "one\ntwo"


def test_words_are_placed_inside_their_block() -> None:
    heard = words(("early", -0.2, 0.3), ("mid", 0.3, 0.7), ("overlap", 0.6, 1.1), ("late", 1.9, 2.6))
    placed = place(heard, 5.0, 7.0)
    assert [(w.start, w.end) for w in placed] == [(5.0, 5.3), (5.3, 5.7), (5.7, 6.1), (6.9, 7.0)]
    assert [w.text for w in placed] == ["early", "mid", "overlap", "late"]


def test_a_block_without_words_keeps_its_block_cue_and_untimed_blocks_are_refused() -> None:
    timeline = Timeline(blocks=((0, 0.0, 1.0), (1, 1.5, 3.0)), chapters=(), duration=3.0)
    said = words(("Hi", 0.1, 0.3), ("there.", 0.3, 0.8))
    heard = TimedBlock(0, "Hi there.", Path("a.wav"), words=tuple(said))
    silent = TimedBlock(1, "Nothing <heard>", Path("b.wav"))
    assert parse(subtitles([heard, silent], timeline, "vtt", level="word"), "vtt") == [
        (0.1, 0.8, "Hi <00:00:00.300>there."), (1.5, 3.0, "Nothing &lt;heard&gt;")]
    with pytest.raises(InvalidInput, match="Block 1 has no word timings"):
        subtitles([RenderedBlock(0, "Hi there.", Path("a.wav"))], timeline, "srt", level="word")
    with pytest.raises(InvalidInput, match="block, sentence, word"):
        subtitles([heard], timeline, "srt", level="letter")


# ---- the block's own words, timed by the heard words (no model) --------------------------------
LAMP = "He lit the lamp at dusk."


def heard_lamp(*drop: str, **swap: str) -> list[Word]:
    """The words of :data:`LAMP` as Whisper might hear them (lower case, no punctuation), each
    0.2 s apart but "lamp" (0.4 s); ``drop`` leaves words out, ``swap`` mishears one."""
    spans = {"he": (0.1, 0.3), "lit": (0.3, 0.5), "the": (0.5, 0.6), "lamp": (0.6, 1.0),
             "at": (1.0, 1.2), "dusk": (1.2, 1.7)}
    return [Word(swap.get(w, w), s, e, 0.9) for w, (s, e) in spans.items() if w not in drop]


def timed(alignment: Alignment) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for w in alignment.words]


def test_words_heard_as_written_take_their_times_and_keep_the_blocks_spelling() -> None:
    aligned = align(LAMP, heard_lamp(), 0.0, 2.0)
    assert timed(aligned) == [("He", 0.1, 0.3), ("lit", 0.3, 0.5), ("the", 0.5, 0.6),
                              ("lamp", 0.6, 1.0), ("at", 1.0, 1.2), ("dusk.", 1.2, 1.7)]
    assert aligned.matched == 6 and not aligned.spread
    assert all(w.probability == 0.9 for w in aligned.words)
    assert normalise("Americans,") == "americans" and normalise("“Don’t!”") == "dont"
    assert normalise("ＡＢＣ") == "abc"  # NFKC: full-width letters match


def test_a_misheard_word_takes_the_misheard_words_time() -> None:
    aligned = align(LAMP, heard_lamp(lamp="lamb"), 0.0, 2.0)
    assert [w.text for w in aligned.words] == LAMP.split()
    assert aligned.words[3] == Word("lamp", 0.6, 1.0, 0.0)  # its time is Whisper's, its word ours
    assert aligned.matched == 5
    # One word heard as two ("my" as "am I", tiny.en on JFK): it takes both words' span.
    heard = words(("And", 0.0, 0.76), ("so", 0.76, 1.04), ("am", 1.04, 1.34), ("I", 1.34, 1.46),
                  ("fellow", 1.46, 1.78), ("Americans.", 1.78, 2.12))
    aligned = align("And so, my fellow Americans,", heard, 0.0, 3.0)
    assert timed(aligned) == [("And", 0.0, 0.76), ("so,", 0.76, 1.04), ("my", 1.04, 1.46),
                              ("fellow", 1.46, 1.78), ("Americans,", 1.78, 2.12)]


def test_a_word_whisper_missed_is_timed_between_its_neighbours() -> None:
    heard = heard_lamp("the")  # a 0.1 s gap where "the" was said
    assert timed(align(LAMP, heard, 0.0, 2.0))[1:4] == [("lit", 0.3, 0.5), ("the", 0.5, 0.6), ("lamp", 0.6, 1.0)]
    # Two words missed: the gap is shared by their lengths (3 and 4 characters).
    heard = heard_lamp("the", "lamp")
    assert timed(align(LAMP, heard, 0.0, 2.0))[1:5] == [
        ("lit", 0.3, 0.5), ("the", 0.5, 0.714), ("lamp", 0.714, 1.0), ("at", 1.0, 1.2)]
    # No room between the neighbours (Whisper stretched "lit" over "the"): the neighbours share.
    heard = [Word("lit", 0.3, 0.6) if w.text == "lit" else w for w in heard_lamp("the")]
    assert timed(align(LAMP, heard, 0.0, 2.0))[1:4] == [("lit", 0.3, 0.51), ("the", 0.51, 0.72), ("lamp", 0.72, 1.0)]
    assert 0.72 - 0.51 >= MIN_WORD_S
    # Missed at the edges: the block's start and end bound them.
    assert timed(align(LAMP, heard_lamp("he", "dusk"), 0.0, 2.0))[::5] == [("He", 0.0, 0.3), ("dusk.", 1.2, 2.0)]
    assert timed(align(LAMP, heard_lamp("he", "dusk"), 0.05, 1.9))[::5] == [("He", 0.05, 0.3), ("dusk.", 1.2, 1.9)]


def test_an_extra_word_whisper_heard_is_dropped() -> None:
    heard = heard_lamp()
    heard.insert(2, Word("uh", 0.5, 0.55, 0.4))
    heard[3] = Word("the", 0.55, 0.6, 0.9)
    aligned = align(LAMP, heard, 0.0, 2.0)
    assert [w.text for w in aligned.words] == LAMP.split() and aligned.matched == 6
    assert timed(aligned)[1:3] == [("lit", 0.3, 0.5), ("the", 0.55, 0.6)]


def test_punctuation_casing_and_names_come_from_the_block() -> None:
    text = '"Dr. O\'Neil," she said — LOUDLY.'
    heard = words(("doctor", 0.0, 0.4), ("o'neil", 0.4, 0.8), ("she", 0.9, 1.0), ("said", 1.0, 1.3),
                  ("loudly", 1.4, 1.9))
    aligned = align(text, heard, 0.0, 2.0)
    assert timed(aligned) == [('"Dr.', 0.0, 0.4), ("O'Neil,\"", 0.4, 0.8), ("she", 0.9, 1.0),
                              ("said", 1.0, 1.3), ("—", 1.3, 1.4), ("LOUDLY.", 1.4, 1.9)]
    assert aligned.matched == 4  # "Dr." heard as "doctor" is timed, not counted as heard


def test_times_stay_in_order_inside_the_block_whatever_whisper_heard() -> None:
    rng = random.Random(7)
    vocab = ["The", "keeper,", "climbed", "stairs", "lamp!", "at", "dusk.", "ships", "—", "rocks?", "a"]
    for _ in range(300):
        said = [rng.choice(vocab) for _ in range(rng.randint(1, 25))]
        heard, clock = [], rng.uniform(-0.3, 0.5)
        for word in said:
            if rng.random() < 0.15:
                continue  # missed
            if rng.random() < 0.1:
                heard.append(Word("uh", clock, clock + 0.1))  # an extra word
                clock += 0.1
            length = rng.choice([0.0, 0.05, 0.3])
            text = "zzz" if rng.random() < 0.15 else word.lower().strip(",.!?")
            heard.append(Word(text, clock, clock + length))
            clock += length + rng.choice([0.0, 0.0, 0.2, 0.7])
        start, end = 3.0, 3.0 + max(0.5, clock - rng.uniform(0.0, 0.4))
        placed = place(heard, start, end)
        aligned = align(" ".join(said), placed, start, end)
        if not placed:
            assert aligned.words == ()
            continue
        assert [w.text for w in aligned.words] == said
        assert all(start <= w.start <= w.end <= end for w in aligned.words)
        assert all(b.start >= a.end for a, b in itertools.pairwise(aligned.words))


def test_when_whisper_heard_something_else_the_words_are_spread_over_the_speech() -> None:
    text = "The keeper climbed the stairs."  # 3 + 6 + 7 + 3 + 7 = 26 characters
    german = words(("Der", 1.0, 1.2), ("Wärter", 1.2, 1.6), ("stieg", 1.7, 2.0), ("die", 2.0, 2.1),
                   ("Treppe", 2.1, 2.6), ("hinauf", 2.6, 3.0))
    aligned = align(text, german, 0.0, 4.0)
    assert aligned.spread and aligned.matched == 0
    assert [w.text for w in aligned.words] == text.split()
    assert [w.start for w in aligned.words] == pytest.approx([1.0, 1.231, 1.692, 2.231, 2.462], abs=1e-3)
    assert aligned.words[-1].end == 3.0 and all(w.probability == 0.0 for w in aligned.words)
    # One word of five heard as written (20 %) is too few; two (40 %) are enough to anchor.
    one = [*german[:5], Word("stairs", 2.6, 3.0)]
    assert align(text, one, 0.0, 4.0).spread
    two = [german[0], Word("keeper", 1.2, 1.6), *german[2:5], Word("stairs", 2.6, 3.0)]
    anchored = align(text, two, 0.0, 4.0)
    assert not anchored.spread and anchored.words[1].start == 1.2 and anchored.words[4].start == 2.6
    assert align(text, [], 0.0, 4.0) == Alignment((), 0) and align("", german, 0.0, 4.0).words == ()


def test_a_long_block_matches_every_common_word() -> None:
    text = " ".join(f"the word{i}" for i in range(150))  # "the" is 50 % of 300 words
    heard = [Word(w, round(i * 0.3, 3), round(i * 0.3 + 0.25, 3)) for i, w in enumerate(text.split())]
    aligned = align(text, heard, 0.0, 100.0)
    assert aligned.matched == 300  # difflib's autojunk would have thrown "the" away
    assert [(w.start, w.end) for w in aligned.words] == [(w.start, w.end) for w in heard]


def test_cues_read_the_blocks_words_at_the_heard_times() -> None:
    timeline = Timeline(blocks=((0, 10.0, 12.0),), chapters=(), duration=12.0)
    heard = heard_lamp("the", dusk="dust")  # "the" missed, "dusk." misheard
    block = TimedBlock(0, LAMP, Path("unused.wav"), words=tuple(heard))
    assert subtitles([block], timeline, "srt", level="word") == (
        "1\n00:00:10,100 --> 00:00:11,700\nHe lit the lamp at dusk.\n")
    assert subtitles([block], timeline, "vtt", level="word") == (
        "WEBVTT\n\n00:00:10.100 --> 00:00:11.700\n"
        "He <00:00:10.300>lit <00:00:10.500>the <00:00:10.600>lamp <00:00:11.000>at <00:00:11.200>dusk.\n")


# ---- real Whisper on real speech -----------------------------------------------------------------
@pytest.fixture(scope="module")
def jfk_blocks(jfk_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[RenderedBlock]:
    """A silent block, the first three seconds of JFK, and the whole recording, as rendered takes,
    the two spoken ones with their true words (tiny.en hears "my" in the first as "am I")."""
    speech = audio.load_mono(jfk_path)
    folder = tmp_path_factory.mktemp("word-blocks")
    pieces = [np.zeros(RATE, dtype=np.float32), speech[: 3 * RATE], speech]
    texts = ["Block 0.", "And so, my fellow Americans,", JFK]
    out = []
    for i, (piece, text) in enumerate(zip(pieces, texts, strict=True)):
        path = folder / f"block-{i}.wav"
        path.write_bytes(audio.wav_bytes(piece))
        out.append(RenderedBlock(i, text, path, pause=0.7))
    return out


def test_whisper_word_timings_land_inside_each_block(
    shared_asr: Any, jfk_blocks: list[RenderedBlock]
) -> None:
    calls = shared_asr.model_calls
    cached = len(shared_asr._cache._memory)  # word timings must stay out of the transcript cache
    timed = time_words(shared_asr, jfk_blocks, ["auto", "English", "en"])
    assert shared_asr.model_calls == calls + 2  # the silent block needs no model call
    assert len(shared_asr._cache._memory) == cached
    assert timed[0].words == ()
    full = [w.text.lower().strip(".,") for w in timed[2].words]
    assert "country" in full and full[:5] == ["and", "so", "my", "fellow", "americans"]
    assert all(0.0 <= w.start <= w.end <= 11.1 and 0.0 <= w.probability <= 1.0 for w in timed[2].words)
    for block in timed[1:]:  # Whisper's words anchor the true ones; no spreading by length
        aligned = align(block.text, block.words, 0.0, 11.0)
        assert not aligned.spread and aligned.matched >= len(block.text.split()) - 2

    _, _, timeline = assemble(timed)
    spans = {index: (start, end) for index, start, end in timeline.blocks}
    for fmt in ("srt", "vtt"):
        cues = parse(subtitles(timed, timeline, fmt, level="word"), fmt)
        assert all(b[0] >= a[1] - 1e-3 for a, b in itertools.pairwise(cues))  # in order, no overlaps
        by_block = {index: [c for c in cues if start - 1e-3 <= c[0] and c[1] <= end + 1e-3]
                    for index, (start, end) in spans.items()}
        assert sum(len(found) for found in by_block.values()) == len(cues)  # every cue inside a block
        assert by_block[0] == [(*spans[0], "Block 0.")]  # no words heard: the block cue
        for index in (1, 2):
            start, end = spans[index]
            assert by_block[index][0][0] == pytest.approx(start, abs=FRAME)  # JFK speaks at once
            assert by_block[index][-1][1] <= end + 1e-3
        for index in (1, 2):  # the block's words, punctuation and all, not what Whisper heard
            said = " ".join(TAG.sub("", c[2]).replace("\n", " ") for c in by_block[index])
            assert said == timed[index].text
        if fmt == "vtt":  # each word's tag lies inside its cue, in order
            for start, end, payload in cues:
                tags = [seconds(t) for t in TAG.findall(payload)]
                assert all(start < t < end for t in tags) and tags == sorted(set(tags))
            country = next(c for c in by_block[2] if "country" in c[2])
            tagged = re.search(r"<(\S+)>country", country[2])
            at = seconds(tagged.group(1)) if tagged else country[0]  # untagged: the cue's first word
            assert at - spans[2][0] == pytest.approx(6.1, abs=0.5)  # said about 6.1 s into JFK


def test_a_language_the_model_cannot_hear_is_refused_by_block(
    shared_asr: Any, jfk_blocks: list[RenderedBlock]
) -> None:
    with pytest.raises(InvalidInput, match=r"Block 2: .* only understands English.*Choose block or sentence"):
        time_words(shared_asr, jfk_blocks[1:2], ["German"])


def test_whisper_that_cannot_load_says_to_choose_another_level(
    tmp_path: Path, jfk_blocks: list[RenderedBlock]
) -> None:
    broken = WhisperEngine(model=str(tmp_path / "no-model"), device="cpu", fallback=False)
    message = "Word-level subtitles need Whisper.*block or sentence level"
    with pytest.raises(ModelUnavailable, match=message) as info:
        time_words(broken, jfk_blocks[1:], ["en", "en"])
    assert "Traceback" not in info.value.message and "does not exist" in info.value.message


# ---- a rendered project, exported at level word --------------------------------------------------
LINES = ["The keeper climbed the stairs.", "He lit the lamp at dusk.", "Three ships passed the rocks."]


@pytest.fixture(scope="module")
def project_studio(
    tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, espeak_wav: Path
) -> tuple[Studio, str]:
    """A studio speaking with espeak-ng (real, intelligible speech) and the session's Whisper, with
    a three-block project rendered."""
    studio = Studio(Settings(data_dir=tmp_path_factory.mktemp("word-export") / "data", quality="off"),
                    tts=EspeakBackend(), asr=shared_asr)
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav,
                      "The quick brown fox jumps over the lazy dog near the river bank.")
    blocks = [{"text": t, "pause": 0.8 if i == 0 else None} for i, t in enumerate(LINES)]
    project = studio.projects.create("Lighthouse", voice=profile.id, language="English", blocks=blocks)
    studio.renders.start(project.id)
    done = studio.renders.wait(project.id, timeout=120)
    assert [b.status for b in done.blocks] == ["rendered"] * 3
    return studio, project.id


def test_a_zip_export_at_word_level(project_studio: tuple[Studio, str]) -> None:
    studio, project_id = project_studio
    steps: list[str] = []
    (bundle,) = studio.projects.export(project_id, "zip", "srt", level="word", step=steps.append)
    assert steps == ["reading the takes", "timing the words", "levelling the loudness", "writing the zip"]
    project = studio.projects.store.get(project_id)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        cues = parse(archive.read("subtitles.srt").decode(), "srt")
        lengths = [sf.info(archive.open(name)).duration for name in names if name.endswith(".wav")]
    # The timeline, rebuilt from the ZIP's own block files and the pauses.
    spans, position = [], 0.0
    for length, block in zip(lengths, project.blocks, strict=True):
        spans.append((position, position + length))
        position += length + block.pause
    for start, end in spans:
        inside = [c for c in cues if start - 1e-3 <= c[0] and c[1] <= end + 1e-3]
        assert inside, f"no cue in the block at {start:.2f}-{end:.2f} s"
        assert inside[0][0] >= start - 1e-3 and inside[-1][1] <= end + 1e-3
    assert sum(1 for c in cues if any(s - 1e-3 <= c[0] and c[1] <= e + 1e-3 for s, e in spans)) == len(cues)
    assert all(b[0] >= a[1] - 1e-3 for a, b in itertools.pairwise(cues))
    # Each block's cues read its own words, exactly as written, whatever Whisper made of espeak.
    for (start, end), line in zip(spans, LINES, strict=True):
        inside = [c[2] for c in cues if start - 1e-3 <= c[0] and c[1] <= end + 1e-3]
        assert " ".join(inside).replace("\n", " ").split() == line.split()


def test_word_level_through_rest_and_the_export_job(project_studio: tuple[Studio, str]) -> None:
    from fastapi.testclient import TestClient

    from voicebox.api import create_api_app

    studio, project_id = project_studio
    url = f"/projects/{project_id}/export"
    with TestClient(create_api_app(studio, studio.settings)) as client:
        bad = client.post(url, json={"format": "wav", "subtitles": "vtt", "level": "letter"})
        assert bad.status_code == 422 and "level" in bad.json()["detail"]
        started = client.post(url, json={"format": "wav", "subtitles": "vtt", "level": "word"})
        assert started.status_code == 202, started.text
        job = studio.exports.wait(project_id, started.json()["id"])
        assert job.state == "done", job.message
        vtt = client.get(f"{started.json()['url']}/file", params={"index": 1}).text
    cues = parse(vtt, "vtt")
    assert len(cues) >= 3 and any(TAG.search(c[2]) for c in cues)
    assert " ".join(TAG.sub("", c[2]) for c in cues).replace("\n", " ").split() == " ".join(LINES).split()


def test_an_export_without_whisper_fails_with_the_way_out(
    project_studio: tuple[Studio, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio, project_id = project_studio
    broken = WhisperEngine(model=str(tmp_path / "gone"), device="cpu", fallback=False)
    monkeypatch.setattr(studio, "asr", broken)
    with pytest.raises(ModelUnavailable, match="Choose block or sentence level"):
        studio.projects.export(project_id, "wav", "srt", level="word")
    job = studio.exports.wait(project_id, studio.exports.start(project_id, "wav", "srt", "word").id)
    assert job.state == "failed" and "Choose block or sentence level" in job.message
    # The other levels need no Whisper, and nothing was half-written for them.
    audio_file, srt = studio.projects.export(project_id, "wav", "srt", level="sentence")
    assert audio_file.exists() and "keeper" in srt.read_text().lower()
