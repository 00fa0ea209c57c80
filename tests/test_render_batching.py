"""Project blocks of one voice rendered in groups, batched through the engine (``Takes.group``).

On the tiny random Qwen3-TTS checkpoint: a six-block project of two voices is made in groups (the
engine gets each group's chunks in one batch), every block still has its own take (record, audio,
sentence files, chunk texts), the statuses and the progress are those of a one-at-a-time render,
a pause lands between groups, and what a recorded seed reproduces. On espeak-ng (a backend that
does not batch, and a variant that says it does): the fallback to one block at a time, one
failing block among others, and a render that dies in the middle of a group.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.espeak_backend import EspeakBackend
from voicebox.assembly import CHUNK_MAX_CHARS
from voicebox.config import Settings
from voicebox.engines.text_split import chunk_text
from voicebox.errors import InvalidInput, NotFound
from voicebox.hf_spaces import ZeroGPUBackend
from voicebox.projects.records import Project, RenderState
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.speech import SpeechRequest, batch_rows

LINES = [
    "The keeper climbed the stairs.",
    "He trimmed the wick.",
    "He polished the great lens. It shone.",
    "He lit the lamp at dusk.",
    "Three ships passed the rocks.",
    "He wrote their names in the log.",
    "The fog came in.",
    "He rang the bell.",
]


def rendered(studio: Studio, project: Project) -> Project:
    studio.renders.start(project.id)
    return studio.renders.wait(project.id, timeout=300)


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    event = threading.Event()
    for _ in range(int(timeout * 20)):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError("timed out waiting")


# ---- on the tiny Qwen3-TTS checkpoint ----------------------------------------------------------
@pytest.fixture
def tiny(tmp_path: Path, tiny_checkpoint: Path, whisper_tiny_path: str, shared_tts: Any, shared_asr: Any,
         jfk_reference: Path, espeak_wav: Path) -> tuple[Studio, str, str]:
    """A studio on the session's tiny engine with two voices (their ids)."""
    from tests.support.studio import studio_settings

    studio = Studio(studio_settings(tmp_path / "data", tiny_checkpoint, whisper_tiny_path), tts=shared_tts,
                    asr=shared_asr)
    voices = []
    for name, sample in (("Keeper", jfk_reference), ("Sailor", espeak_wav)):
        profile = studio.create_profile(name, language="English")
        studio.add_sample(profile.id, sample, "Words of the sample.")
        voices.append(profile.id)
    return studio, voices[0], voices[1]


@pytest.fixture
def batches(shared_tts: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The texts of every batch the engine's decode loop is given, in order."""
    calls: list[list[str]] = []
    real = shared_tts._generate_codes

    def spy(take: Any, texts: list[str], seed: int) -> Any:
        calls.append(list(texts))
        return real(take, texts, seed)

    monkeypatch.setattr(shared_tts, "_generate_codes", spy)
    return calls


def takes_of(studio: Studio, project: Project) -> list[Any]:
    return [studio.get_generation(b.generation_id) for b in project.blocks]


def test_a_two_voice_project_renders_in_groups_and_each_block_keeps_its_own_take(
    tiny: tuple[Studio, str, str], batches: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    studio, keeper, sailor = tiny
    voices = [keeper, keeper, keeper, sailor, sailor, keeper]
    blocks = [{"text": t, "voice": v} for t, v in zip(LINES, voices)]
    progress: list[RenderState] = []
    set_render = studio.projects.set_render
    monkeypatch.setattr(studio.projects, "set_render", lambda pid, state: progress.append(state) or set_render(pid, state))

    alone = rendered(studio, _with_batching(studio, False, "Alone", blocks))
    one_at_a_time_batches, progress_alone = list(batches), list(progress)
    batches.clear()
    progress.clear()
    together = rendered(studio, _with_batching(studio, True, "Together", blocks))

    # the engine got blocks 1-3 (one voice) in one batch, 4-5 (the other) in one, 6 alone
    assert [b for b in batches if len(b) > 1] == [LINES[0:3], LINES[3:5]]
    assert all(len(b) == 1 for b in one_at_a_time_batches)
    assert together.render.state == "done" and together.render.done == 6
    for block, take, voice in zip(together.blocks, takes_of(studio, together), voices):
        assert block.status == "rendered" and take.project_id == together.id and take.profile_id == voice
        assert take.text == block.text
        assert [c.text for c in take.chunks] == chunk_text(block.text, CHUNK_MAX_CHARS)
        assert [c.index for c in take.chunks] == list(range(len(take.chunks)))
        assert studio.generation_path(take.id).stat().st_size > 44
        for chunk in take.chunks:
            for number, sentence_take in enumerate(chunk.takes):
                assert sentence_take.file == f"generations/{take.id}/{chunk.index}-{number}.wav"
                assert (studio.settings.data_dir / sentence_take.file).is_file()
    seeds = [t.seed for t in takes_of(studio, together)]
    assert seeds[0] == seeds[1] == seeds[2] and seeds[3] == seeds[4]  # one seed per group
    # the same statuses, notes and take states as the one-at-a-time render
    assert [(b.status, b.message) for b in together.blocks] == [(b.status, b.message) for b in alone.blocks]
    assert [t.status for t in takes_of(studio, together)] == [t.status for t in takes_of(studio, alone)]
    # the progress says the same, block by block: done of total, and the current block's text
    assert [(s.state, s.done, s.total, s.current) for s in progress] == [
        (s.state, s.done, s.total, s.current) for s in progress_alone
    ]
    assert [(s.done, s.current) for s in progress if s.state == "running"][1:] == [
        (i, LINES[i]) for i in range(6)
    ]


def _with_batching(studio: Studio, batching: bool, title: str, blocks: list[dict]) -> Project:
    studio.renders.batching = batching
    return studio.projects.create(title, blocks=blocks, language="English")


def test_a_pause_lands_between_groups(tiny: tuple[Studio, str, str], shared_tts: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    studio, keeper, _ = tiny
    entered, release = threading.Event(), threading.Event()
    real = shared_tts._generate_codes

    def held(take: Any, texts: list[str], seed: int) -> Any:
        if not entered.is_set():  # the first group's batch waits until the pause is asked for
            entered.set()
            assert release.wait(60)
        return real(take, texts, seed)

    monkeypatch.setattr(shared_tts, "_generate_codes", held)
    project = studio.projects.create("Pause", voice=keeper, blocks=[{"text": t} for t in LINES])
    studio.renders.start(project.id)
    assert entered.wait(120)
    outcome: list[Project] = []
    pauser = threading.Thread(target=lambda: outcome.append(studio.renders.pause(project.id)))
    pauser.start()
    wait_for(lambda: studio.renders._running[project.id][1].is_set())  # the stop is asked for
    release.set()
    pauser.join(120)
    paused = outcome[0]
    assert paused.render.state == "paused" and (paused.render.done, paused.render.total) == (4, 8)
    assert [b.status for b in paused.blocks] == ["rendered"] * 4 + ["new"] * 4  # the whole first group
    kept = {b.id: b.generation_id for b in paused.blocks if b.status == "rendered"}
    assert {r["id"] for r in studio.store.generations.all()} == set(kept.values())  # nothing half-kept

    done = rendered(studio, paused)
    assert done.render.state == "done" and (done.render.done, done.render.total) == (4, 4)
    assert all(done.block(k).generation_id == v for k, v in kept.items())


def test_what_a_recorded_seed_reproduces(tiny: tuple[Studio, str, str]) -> None:
    """A group has one seed, recorded as each of its takes' seed. The rows of a batch draw from one
    random generator (``synthesis.py``: the batch is seeded with ``chunk_seed(seed, first chunk)``,
    not row by row), so a block made in a group is not, in general, remade by its seed alone. What
    holds: the same group with the same seed gives every block the same audio again, byte for byte;
    and a block with a seed of its own is made alone, so that seed reproduces it with any take."""
    studio, keeper, _ = tiny
    requests = [GenerationRequest(keeper, t) for t in LINES[:4]]
    first = [take for _, take in studio.takes.group(requests, seed=4321)]
    again = [take for _, take in studio.takes.group(requests, seed=4321)]
    assert all(t.seed == 4321 for t in first + again)
    assert [t.id for t in first] != [t.id for t in again]
    assert [studio.generation_path(t.id).read_bytes() for t in first] == [
        studio.generation_path(t.id).read_bytes() for t in again
    ]
    assert [[c.seed for c in t.chunks] for t in first] == [[c.seed for c in t.chunks] for t in again]

    blocks = [{"text": LINES[0]}, {"text": LINES[1], "seed": 77}, {"text": LINES[2]}, {"text": LINES[3]}]
    project = rendered(studio, studio.projects.create("Seeds", voice=keeper, blocks=blocks))
    seeded = studio.get_generation(project.blocks[1].generation_id)
    assert seeded.seed == 77
    remade = studio.generate(GenerationRequest(keeper, LINES[1], seed=77))
    assert studio.generation_path(remade.id).read_bytes() == studio.generation_path(seeded.id).read_bytes()


# ---- on espeak-ng --------------------------------------------------------------------------------
class BatchingEspeak(EspeakBackend):
    """espeak-ng that says it batches four chunks (it still speaks them one by one), records each
    request's chunks, and refuses any request that holds ``refuse``."""

    def __init__(self, refuse: str = "") -> None:
        super().__init__()
        self.refuse = refuse
        self.requests: list[tuple[str, ...]] = []

    def rows_per_batch(self) -> int:
        return 4

    def speak(self, request: SpeechRequest, cancel: threading.Event | None = None) -> Any:
        self.requests.append(request.chunks)
        if self.refuse and any(self.refuse in c for c in request.chunks):
            raise InvalidInput(f"This backend does not say {self.refuse!r}.")
        return super().speak(request, cancel)


def espeak_studio(data: Path, shared_asr: Any, backend: EspeakBackend, espeak_wav: Path) -> tuple[Studio, str]:
    studio = Studio(Settings(data_dir=data, quality="off"), tts=backend, asr=shared_asr)
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    return studio, profile.id


def test_a_backend_that_does_not_batch_gets_one_block_at_a_time(tmp_path: Path, shared_asr: Any,
                                                                  espeak_wav: Path) -> None:
    plain = EspeakBackend()
    assert batch_rows(plain) == 1 and batch_rows(BatchingEspeak()) == 4
    assert batch_rows(ZeroGPUBackend(BatchingEspeak(), lambda f: f)) == 1  # the wrapper does not forward it
    studio, voice = espeak_studio(tmp_path / "plain", shared_asr, plain, espeak_wav)
    done = rendered(studio, studio.projects.create("Plain", voice=voice, blocks=[{"text": t} for t in LINES[:5]]))
    assert done.render.state == "done" and plain.takes == 5

    batching = BatchingEspeak()
    studio, voice = espeak_studio(tmp_path / "batching", shared_asr, batching, espeak_wav)
    done = rendered(studio, studio.projects.create("Grouped", voice=voice, blocks=[{"text": t} for t in LINES[:5]]))
    assert done.render.state == "done" and batching.requests == [tuple(LINES[:4]), (LINES[4],)]
    for block in done.blocks:
        take = studio.get_generation(block.generation_id)
        assert [c.text for c in take.chunks] == [block.text] and take.backend == "espeak-ng"


def test_one_failing_block_does_not_fail_its_group(tmp_path: Path, shared_asr: Any, espeak_wav: Path) -> None:
    backend = BatchingEspeak(refuse="BOOM")
    studio, voice = espeak_studio(tmp_path / "data", shared_asr, backend, espeak_wav)
    texts = [LINES[0], "The BOOM of the sea.", LINES[2], LINES[3]]
    done = rendered(studio, studio.projects.create("Boom", voice=voice, blocks=[{"text": t} for t in texts]))
    assert [b.status for b in done.blocks] == ["rendered", "failed", "rendered", "rendered"]
    assert "does not say 'BOOM'" in done.blocks[1].message
    assert done.render.state == "failed" and done.render.message.startswith("1 block(s)")
    assert backend.requests[0] == tuple(texts)  # tried together, then one by one
    assert backend.requests[1:] == [(t,) for t in texts]

    backend.requests.clear()  # a request that fails its checks fails alone; the others go together
    outcome = dict(studio.takes.group([GenerationRequest(voice, LINES[4]), GenerationRequest("missing", LINES[5]),
                                       GenerationRequest(voice, LINES[6])]))
    assert isinstance(outcome[1], NotFound)
    assert [c.text for c in outcome[0].chunks] == [LINES[4]] and [c.text for c in outcome[2].chunks] == [LINES[6]]
    assert backend.requests == [(LINES[4], LINES[6])]
    assert [c.index for c in outcome[2].chunks] == [0] and outcome[0].seed == outcome[2].seed


class SwappingBatches(BatchingEspeak):
    """Says other words for a sentence that starts "The keeper": the gate fails it."""

    def _say(self, text: str, voice: str, pitch: int) -> Any:
        swapped = "Seven purple elephants danced quietly on the frozen lake."
        return super()._say(swapped if text.startswith("The keeper") else text, voice, pitch)


def test_the_gate_retakes_a_failing_sentence_of_one_block_alone(
    tmp_path: Path, shared_asr: Any, speaker_encoder: Any, espeak_wav: Path
) -> None:
    from voicebox.engines.params import chunk_seed
    from voicebox.quality import QualityGate

    backend = SwappingBatches()
    settings = Settings(data_dir=tmp_path / "data", quality="retake", max_takes=2)
    studio = Studio(settings, tts=backend, asr=shared_asr, quality_gate=QualityGate(shared_asr, speaker=speaker_encoder))
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    texts = ["Ships passed the rocks in the night.", LINES[0], "He wrote their names in the log."]
    done = rendered(studio, studio.projects.create("Gate", voice=profile.id, blocks=[{"text": t} for t in texts]))
    assert backend.requests[0] == tuple(texts) and (LINES[0],) in backend.requests[1:]  # re-takes go alone
    takes = takes_of(studio, done)
    failing = takes[1].chunks[0]
    assert takes[1].status == "needs_review" and takes[1].quality == "retake" and done.blocks[1].message
    assert len(failing.takes) == 2 and all(t.passed is False for t in failing.takes)
    # the re-take is seeded as sentence 2 of one take of the group's text: no two blocks share it
    assert failing.takes[1].seed == chunk_seed(takes[1].seed, 1, 2)
    for take in takes:
        assert [c.index for c in take.chunks] == [0] and take.seed == takes[0].seed
        for sentence_take in take.chunks[0].takes:
            assert sentence_take.file.startswith(f"generations/{take.id}/0-")
            assert studio.store.resolve_file(sentence_take.file).is_file()


class Killed(BaseException):
    """Stands for the process dying: nothing in the render catches it."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_render_that_dies_mid_group_keeps_the_finished_blocks_and_remakes_the_rest(
    tmp_path: Path, shared_asr: Any, espeak_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    studio, voice = espeak_studio(data, shared_asr, BatchingEspeak(), espeak_wav)
    project = studio.projects.create("Dies", voice=voice, blocks=[{"text": t} for t in LINES[:4]])
    record = studio.projects.set_block_result
    calls: list[str] = []

    def dies_at_the_second(project_id: str, block_id: str, *args: Any, **kwargs: Any) -> bool:
        calls.append(block_id)
        if len(calls) == 2:  # the second block's take is saved, the process dies before it is kept
            raise Killed()
        return record(project_id, block_id, *args, **kwargs)

    monkeypatch.setattr(studio.projects, "set_block_result", dies_at_the_second)
    cut = studio.renders.wait(studio.renders.start(project.id).id, timeout=120)
    assert cut.render.state == "running" and [b.status for b in cut.blocks] == ["rendered", "new", "new", "new"]
    assert len(studio.store.generations.all()) == 2  # the first block's take and the orphan

    restarted = Studio(Settings(data_dir=data, quality="off"), tts=BatchingEspeak(), asr=shared_asr)
    assert restarted.interrupted_renders == [project.id]
    paused = restarted.projects.store.get(project.id)
    assert {r["id"] for r in restarted.store.generations.all()} == {paused.blocks[0].generation_id}
    done = rendered(restarted, paused)
    assert done.render.state == "done" and all(b.status == "rendered" for b in done.blocks)
    assert done.blocks[0].generation_id == cut.blocks[0].generation_id
    assert restarted.tts.requests == [tuple(LINES[1:4])]  # only the unfinished blocks, together
