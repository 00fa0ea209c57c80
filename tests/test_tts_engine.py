"""The Qwen3-TTS engine on a real (tiny, random-weight) checkpoint: nothing here is mocked.

Every test loads the checkpoint through the same ``Qwen3TTSModel.from_pretrained`` path used for
the released models and runs the real talker, code predictor and codec decoder.
"""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

from voicebox import audio
from voicebox.engines.params import make_params
from voicebox.engines.prompt_cache import PromptCache
from voicebox.engines.tts import (
    CHUNK_MAX_CHARS,
    DECODE_LEFT_CONTEXT,
    SAMPLES_PER_FRAME,
    ReferenceSample,
    TTSEngine,
    max_frames_for,
)
from voicebox.errors import InvalidInput, ModelUnavailable

JFK_TEXT = "And so, my fellow Americans, ask not what your country can do for you."


def make_engine(checkpoint: Path, cache_dir: Path | None, large: Path | None = None) -> TTSEngine:
    return TTSEngine(
        {"0.6B": str(checkpoint), "1.7B": str(large or checkpoint)},
        device="cpu",
        prompt_cache=PromptCache(cache_dir),
    )


@pytest.fixture
def reference(jfk_reference: Path) -> list[ReferenceSample]:
    return [ReferenceSample(jfk_reference, audio.sha256_file(jfk_reference), JFK_TEXT)]


@pytest.fixture
def engine(tiny_checkpoint: Path, tmp_path: Path) -> TTSEngine:
    return make_engine(tiny_checkpoint, tmp_path / "prompts")


FRAMES = 6  # max_new_tokens for most tests: 5 frames, quick on the tiny model
QUICK = dict(seed=3, max_new_tokens=FRAMES)


def test_engine_speaks_through_the_real_model(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    result = engine.synthesize("Hello there.", reference, "English", params=make_params(**QUICK))
    assert result.sample_rate == 24000 and result.audio.dtype == np.float32 and result.audio.ndim == 1
    assert len(result.audio) == (FRAMES - 1) * SAMPLES_PER_FRAME
    assert float(np.abs(result.audio).max()) > 1e-4  # random codebooks are audible, not silence
    assert result.mode == "icl" and result.seed == 3 and result.language == "English"
    assert set(result.timings) == {"prompt", "generate", "decode", "total"}
    assert result.timings["total"] >= result.timings["generate"] > 0
    assert engine.status()["loaded"] and engine.status()["dtype"] == "float32"


def test_same_seed_same_audio(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    a = engine.synthesize("Same seed.", reference, params=make_params(**QUICK))
    b = engine.synthesize("Same seed.", reference, params=make_params(**QUICK))
    c = engine.synthesize("Same seed.", reference, params=make_params(seed=4, max_new_tokens=FRAMES))
    assert np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)


def test_random_seed_is_chosen_and_recorded(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    result = engine.synthesize("Hi.", reference, params=make_params(max_new_tokens=FRAMES))
    assert isinstance(result.seed, int) and result.params["seed"] == result.seed


def test_load_once_under_concurrency(engine: TTSEngine) -> None:
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        engine.load("0.6B")

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.loads == 1 and engine.loaded_size == "0.6B"


def test_switching_sizes_frees_the_other(tiny_checkpoint: Path, tiny_checkpoint_large: Path, tmp_path: Path) -> None:
    engine = make_engine(tiny_checkpoint, None, large=tiny_checkpoint_large)
    engine.load("0.6B")
    small = weakref.ref(engine._model)
    engine.load("1.7B")
    gc.collect()
    assert small() is None, "the 0.6B model is still in memory after switching"
    status = engine.status()
    assert status["size"] == "1.7B" and status["model"] == str(tiny_checkpoint_large) and engine.loads == 2
    engine.unload()
    assert engine.status()["loaded"] is False and engine.status()["memory_mb"] == 0.0


def test_prompt_cache_miss_then_hit(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    first = engine.synthesize("One.", reference, params=make_params(**QUICK))
    second = engine.synthesize("Two.", reference, params=make_params(**QUICK))
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert engine.prompt_builds == 1
    assert engine.prompt_cache.stats()["hits"] >= 1


def test_disk_cache_survives_a_restart(tiny_checkpoint: Path, tmp_path: Path, reference: list[ReferenceSample]) -> None:
    first = make_engine(tiny_checkpoint, tmp_path / "prompts")
    a = first.synthesize("Before restart.", reference, params=make_params(**QUICK))
    restarted = make_engine(tiny_checkpoint, tmp_path / "prompts")
    b = restarted.synthesize("Before restart.", reference, params=make_params(**QUICK))
    assert restarted.prompt_builds == 0 and b.cache_hit
    assert restarted.prompt_cache.stats()["disk_hits"] == 1
    assert np.array_equal(a.audio, b.audio)  # the cached prompt is the same prompt
    files = sorted(p.suffix for p in (tmp_path / "prompts").iterdir())
    assert files == [".json", ".safetensors"]  # tensors in safetensors, the rest in JSON; no pickle


def test_changed_or_deleted_samples_invalidate(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    engine.synthesize("x", reference, params=make_params(**QUICK))
    changed = [ReferenceSample(reference[0].path, reference[0].sha256, "A different transcript.")]
    result = engine.synthesize("x", changed, params=make_params(**QUICK))
    assert not result.cache_hit and engine.prompt_builds == 2  # transcript is part of the key
    assert engine.prompt_cache.invalidate_samples([reference[0].sha256]) == 4  # 2 in memory + 2 on disk
    assert engine.prompt_cache.stats()["disk_entries"] == 0
    engine.synthesize("x", reference, params=make_params(**QUICK))
    assert engine.prompt_builds == 3


@pytest.mark.parametrize("damage", [b"", b"garbage", None])
def test_corrupt_cache_file_is_rebuilt(
    tiny_checkpoint: Path, tmp_path: Path, reference: list[ReferenceSample], damage: bytes | None
) -> None:
    make_engine(tiny_checkpoint, tmp_path / "p").synthesize("x", reference, params=make_params(**QUICK))
    tensors = next((tmp_path / "p").glob("*.safetensors"))
    if damage is None:
        tensors.unlink()
    else:
        tensors.write_bytes(damage)
    fresh = make_engine(tiny_checkpoint, tmp_path / "p")
    result = fresh.synthesize("x", reference, params=make_params(**QUICK))
    assert not result.cache_hit and fresh.prompt_builds == 1
    assert len(result.audio) == (FRAMES - 1) * SAMPLES_PER_FRAME
    assert make_engine(tiny_checkpoint, tmp_path / "p").voice_prompt(reference)[1] is True  # rewritten


def test_icl_versus_xvector_mode(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    no_text = [ReferenceSample(reference[0].path, reference[0].sha256, "")]
    icl, _, _ = engine.voice_prompt(reference)
    xvec, _, _ = engine.voice_prompt(no_text)
    assert icl.mode == "icl" and icl.ref_code is not None and icl.ref_code.shape[1] == 16
    assert icl.ref_code.shape[0] == pytest.approx(len(audio.load_mono(reference[0].path)) / SAMPLES_PER_FRAME, abs=2)
    assert xvec.mode == "xvector" and xvec.ref_code is None
    result = engine.synthesize("Hi.", no_text, params=make_params(**QUICK))
    assert result.mode == "xvector" and len(result.audio) == (FRAMES - 1) * SAMPLES_PER_FRAME


def test_long_text_is_chunked_and_joined(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    sentence = "This sentence is here to fill the chunk with enough words to matter. "
    text = sentence * (CHUNK_MAX_CHARS // len(sentence) * 3)
    result = engine.synthesize(text, reference, params=make_params(**QUICK))
    assert result.chunks >= 3
    fade = int(0.02 * 24000)
    expected = result.chunks * (FRAMES - 1) * SAMPLES_PER_FRAME - (result.chunks - 1) * fade
    assert len(result.audio) == expected


def test_runaway_guard_retries_then_reports(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    calls: list[int] = []
    seeds: list[int] = []
    original = engine._generate_codes

    def counting(take, texts, seed):  # a spy: the real generation still runs
        calls.append(len(texts))
        seeds.append(seed)
        return original(take, texts, seed)

    engine._generate_codes = counting  # type: ignore[method-assign]
    result = engine.synthesize("Never ends.", reference, params=make_params(seed=5, max_new_tokens=FRAMES))
    assert calls == [1, 1]  # the chunk hit the cap and was retried once with a new seed
    assert seeds[0] == 5 and seeds[1] != 5
    assert [c.status for c in result.chunk_records] == ["incomplete"]
    assert result.status == "incomplete" and "did not finish" in result.message
    assert len(result.audio) == (FRAMES - 1) * SAMPLES_PER_FRAME  # capped, not unbounded


def test_max_frames_scales_with_text() -> None:
    assert max_frames_for("Hi.", 8192) == 30  # (3 chars / 7.5 + 2 s) * 12.5 frames/s
    short, long = max_frames_for("Hello.", 8192), max_frames_for("Hello. " * 40, 8192)
    assert long > short * 10
    assert max_frames_for("你好" * 20, 8192) > max_frames_for("ab" * 20, 8192)  # CJK is slower per char
    assert max_frames_for("x" * 5000, 100) == 100


def test_decode_uses_bounded_reference_context(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    prompt, _, _ = engine.voice_prompt(reference)
    assert prompt.reference_frames > DECODE_LEFT_CONTEXT
    codes = prompt.ref_code[:4]
    assert len(engine.decode(codes, prompt)) == 4 * SAMPLES_PER_FRAME
    assert len(engine.decode(codes, None)) == 4 * SAMPLES_PER_FRAME


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(language="Klingon"), "not supported"),
        (dict(size="3B"), "not available"),
    ],
)
def test_bad_inputs_are_clear(engine: TTSEngine, reference: list[ReferenceSample], kwargs: dict, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        engine.synthesize("Hello.", reference, params=make_params(**QUICK), **kwargs)


def test_empty_text_and_no_samples(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    with pytest.raises(InvalidInput, match="Type some text"):
        engine.synthesize("   \n ", reference)
    with pytest.raises(InvalidInput, match="no samples"):
        engine.synthesize("Hello.", [])


def test_missing_hub_model_fails_fast_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    engine = TTSEngine({"0.6B": "Qwen/voicebox-no-such-model"}, device="cpu")
    with pytest.raises(ModelUnavailable) as info:
        engine.load("0.6B")
    message = str(info.value)
    assert "Qwen/voicebox-no-such-model" in message and "VOICEBOX_TTS_MODEL" in message and "internet" in message
    assert engine.status()["loaded"] is False


def test_wrong_local_path_names_the_variable(tmp_path: Path) -> None:
    engine = TTSEngine({"0.6B": "x", "1.7B": str(tmp_path / "nowhere" / "model")}, device="cpu")
    with pytest.raises(ModelUnavailable, match="VOICEBOX_TTS_MODEL_LARGE.*not a directory"):
        engine.load("1.7B")


def test_directory_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        TTSEngine({"0.6B": str(tmp_path)}, device="cpu").load("0.6B")


def test_max_frames_setting_caps_every_chunk(tiny_checkpoint: Path, reference: list[ReferenceSample]) -> None:
    engine = TTSEngine({"0.6B": str(tiny_checkpoint)}, device="cpu", max_frames=4)
    result = engine.synthesize("A sentence long enough to want many frames of audio.", reference, params=make_params(seed=1))
    assert len(result.audio) == 4 * SAMPLES_PER_FRAME
    assert max_frames_for("long text " * 50, 5) == 5  # the cap wins over the floor


def test_stream_yields_pieces_that_add_up_to_the_take(engine: TTSEngine, reference: list[ReferenceSample]) -> None:
    text = "First sentence is here. " * 12 + "Second part follows now. " * 12
    pieces = list(engine.stream(text, reference, params=make_params(**QUICK)))
    final = pieces[-1].result
    assert final is not None and all(p.result is None for p in pieces[:-1])
    streamed = np.concatenate([p.audio for p in pieces])
    assert final.chunks >= 2 and len(pieces) >= final.chunks
    assert np.array_equal(streamed, final.audio)
    batch = engine.synthesize(text, reference, params=make_params(**QUICK))
    assert len(batch.audio) == len(final.audio)
    assert 0 < final.timings["first_audio"] <= final.timings["total"]
