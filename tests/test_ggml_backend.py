"""The GGML engine on the real library: qwentts.cpp (``realtimetts-qwen-native-cpu``) running GGUF
files converted from a random checkpoint built with the real ``qwen_tts`` classes.

The checkpoint is the ``tiny-ggml`` preset: tiny talker, but the codec decoder at the widths the
library is compiled for (see voicebox/engines/gguf_layout.py), so it is ~320 MB; it is built once
into tests/artifacts/checkpoints and reused while the builder and seed stay the same. Its speech is
noise, so these tests check what holds for any weights: 24 kHz audio, 1920 samples per frame, the
frame caps, the seeds, the event order of the speech seam, streaming, cancel and the voice cache.
Nothing here mocks the model; the fallback test only hides the package's import.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import soundfile as sf

from tests.support.qwen_checkpoint import build_random_checkpoint
from voicebox.audio import MODEL_SAMPLE_RATE
from voicebox.backends import FallbackBackend, choose_engine, local_backend
from voicebox.config import Settings
from voicebox.engines.ggml_backend import GGMLBackend
from voicebox.engines.ggml_runtime import probe
from voicebox.engines.gguf_convert import convert_checkpoint
from voicebox.engines.model_lock import FairLock
from voicebox.engines.params import GenerationParams, chunk_seed
from voicebox.engines.prompt_cache import PromptCache
from voicebox.errors import Cancelled
from voicebox.speech import AudioPiece, ChunkResult, Progress, SpeechBackend, SpeechDone, SpeechRequest, VoiceSample

pytestmark = pytest.mark.skipif(not probe().ok, reason=f"the GGML engine cannot run here: {probe().why}")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "tests" / "artifacts" / "checkpoints"
FRAME = 1920


@pytest.fixture(scope="module")
def ggml_checkpoint() -> Path:
    return build_random_checkpoint(CHECKPOINTS / "tiny-ggml", "tiny-ggml", seed=0, reuse=True)


@pytest.fixture(scope="module")
def gguf_dir(ggml_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gguf")
    convert_checkpoint(ggml_checkpoint, out, "Q8_0")
    convert_checkpoint(ggml_checkpoint, out, "Q4_K_M")  # the codec file is shared
    return out


@pytest.fixture(scope="module")
def backend(gguf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GGMLBackend]:
    cache = tmp_path_factory.mktemp("ggml-cache")
    engine = GGMLBackend({"0.6B": str(gguf_dir)}, quant="Q8_0", lock=FairLock(),
                         prompt_cache=PromptCache(cache / "prompts"), cache_dir=cache, why="test")
    engine.load()
    yield engine
    engine.unload()


def sample(path: Path, seconds: float, source: Path, text: str = "") -> VoiceSample:
    """The first ``seconds`` of ``source`` (espeak speech) as a 24 kHz voice sample."""
    from voicebox import audio

    samples = audio.load_mono(source, MODEL_SAMPLE_RATE)[: int(seconds * MODEL_SAMPLE_RATE)]
    sf.write(path, samples, MODEL_SAMPLE_RATE, subtype="PCM_16")
    import hashlib

    return VoiceSample(path, hashlib.sha256(path.read_bytes()).hexdigest(), text)


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory, espeak_wav: Path) -> VoiceSample:
    return sample(tmp_path_factory.mktemp("voice") / "x.wav", 0.8, espeak_wav)


@pytest.fixture(scope="module")
def icl_voice(tmp_path_factory: pytest.TempPathFactory, espeak_wav: Path) -> VoiceSample:
    return sample(tmp_path_factory.mktemp("voice") / "icl.wav", 0.6, espeak_wav, "The quick")


def request(voice: VoiceSample, *chunks: str, seed: int = 7, frames: int = 3, stream: bool = False) -> SpeechRequest:
    """``frames`` frames per chunk: the cap is ``frames + 1`` (random weights never stop early)."""
    return SpeechRequest(tuple(chunks), (voice,), GenerationParams(seed=seed, max_new_tokens=frames + 1), stream=stream)


def test_converted_files_load_and_speak_at_24_khz(backend: GGMLBackend, gguf_dir: Path, voice: VoiceSample) -> None:
    """The library itself on the converted files: a voice reference, then x-vector and ICL speech,
    in Q8_0 and in Q4_K_M (Q4_K and Q6_K blocks in the talker)."""
    from qwentts_cpp_cpu import QwenTTS

    reference = sf.read(voice.path, dtype="float32")[0]
    ref = backend._tts.extract_voice_ref(reference)
    assert ref.ref_spk_emb.shape == (256,)  # the talker's width: the embedding is one input vector
    assert ref.ref_codes.shape == (16, len(reference) // FRAME)
    audio, rate = backend._tts.synthesize(text="Hello there.", lang="english", ref_spk_emb=ref.ref_spk_emb,
                                          max_new_tokens=3, seed=1)
    assert rate == 24000 and audio.dtype == np.float32 and audio.shape == (3 * FRAME,)
    assert np.isfinite(audio).all() and audio.std() > 1e-4
    q4 = QwenTTS(gguf_dir / "qwen-talker-0.6b-base-Q4_K_M.gguf", gguf_dir / "qwen-tokenizer-12hz-F32.gguf",
                 cpu_threads=backend.threads)
    try:
        audio, rate = q4.synthesize(text="Hello there.", lang="auto", ref_spk_emb=ref.ref_spk_emb,
                                    max_new_tokens=2, seed=1)
    finally:
        q4.close()
    assert rate == 24000 and audio.shape == (2 * FRAME,) and np.isfinite(audio).all()


def test_it_is_a_speech_backend_that_says_what_runs(backend: GGMLBackend) -> None:
    assert isinstance(backend, SpeechBackend)
    status = backend.status()
    assert status["loaded"] and status["engine"] == "ggml" and status["quant"] == "Q8_0" and status["why"] == "test"
    assert status["size"] == "0.6B" and status["device"] == "cpu" and "qwentts.cpp" in status["native"]
    assert status["files"]["talker"].endswith("Q8_0.gguf") and status["memory_mb"] > 100
    assert backend.languages()[0] == "Auto" and "English" in backend.languages()


def test_streamed_take_follows_the_seam(backend: GGMLBackend, voice: VoiceSample) -> None:
    builds = backend.prompt_builds
    events = list(backend.speak(request(voice, "Hello there.", "Second part.", stream=True)))
    assert isinstance(events[0], Progress) and isinstance(events[-1], SpeechDone)
    results = [e for e in events if isinstance(e, ChunkResult)]
    assert [r.index for r in results] == [0, 1]
    assert [r.seed for r in results] == [chunk_seed(7, 0), chunk_seed(7, 1)]
    for result in results:
        position = events.index(result)
        pieces = [e.audio for e in events[:position] if isinstance(e, AudioPiece) and e.index == result.index]
        assert pieces, "a streamed chunk plays before its result"
        assert np.array_equal(np.concatenate(pieces), result.audio)
        assert result.sample_rate == 24000 and result.audio.shape == (3 * FRAME,)
        assert result.frames == 3 and result.hit_cap  # streamed audio is out: no re-take
    done = events[-1]
    assert done.mode == "xvector" and done.sample_rate == 24000 and done.model.size == "0.6B"
    assert {"prompt", "generate", "decode", "total", "first_audio"} <= set(done.timings)
    assert backend.prompt_builds == builds + (0 if done.cache_hit else 1)

    again = list(backend.speak(request(voice, "Hello there.", "Second part.", stream=True)))
    assert again[-1].cache_hit and backend.prompt_builds == builds + (0 if done.cache_hit else 1)
    same = [e for e in again if isinstance(e, ChunkResult)]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(results, same))  # seeded


def test_whole_take_re_makes_a_chunk_that_hit_its_cap(backend: GGMLBackend, voice: VoiceSample) -> None:
    events = list(backend.speak(request(voice, "One sentence.", seed=11, frames=2)))
    assert not any(isinstance(e, AudioPiece) for e in events)
    (result,) = [e for e in events if isinstance(e, ChunkResult)]
    assert result.seed == chunk_seed(11, 0, 1)  # the re-take's seed, recorded with the chunk
    assert result.hit_cap and result.frames == 2 and result.audio.shape == (2 * FRAME,)
    assert set(backend.last_profile) >= {"prefill", "code_predictor", "decode", "frames"}


def test_runaway_cap_comes_from_the_text(backend: GGMLBackend) -> None:
    from voicebox.engines.tts import max_frames_for

    params = GenerationParams(seed=1)
    assert backend.cap("Hello there.", params) == max_frames_for("Hello there.", 8192)
    backend.max_frames = 5
    try:
        assert backend.cap("A much longer sentence than five frames can hold.", params) == 6
    finally:
        backend.max_frames = 0


def test_cancel_stops_a_stream_and_the_engine_goes_on(backend: GGMLBackend, voice: VoiceSample) -> None:
    cancel = threading.Event()
    started = time.perf_counter()
    events = backend.speak(request(voice, "A long sentence that would run for a while.", frames=60, stream=True),
                           cancel)
    with pytest.raises(Cancelled):
        for event in events:
            if isinstance(event, AudioPiece):
                cancel.set()
    cancelled_after = time.perf_counter() - started
    after = list(backend.speak(request(voice, "Short.", frames=2, stream=True)))
    assert isinstance(after[-1], SpeechDone)
    full = backend.last_profile["total"] / 2 * 60  # what 60 frames would have cost at this pace
    assert cancelled_after < full


def test_icl_voice_is_cached_on_disk_with_engine_and_quant(backend: GGMLBackend, icl_voice: VoiceSample) -> None:
    events = list(backend.speak(request(icl_voice, "Hello.", frames=2, stream=True)))
    done = events[-1]
    assert done.mode == "icl" and not done.cache_hit
    prompt, hit, _ = backend.voice_prompt([icl_voice])
    assert hit and prompt.ref_code.shape[1] == 16 and prompt.ref_text == "The quick"
    assert prompt.model.startswith("ggml:") and "Q8_0" in prompt.model
    backend.prompt_cache._memory.clear()  # a restart: only the disk copy is left
    builds, disk_hits = backend.prompt_builds, backend.prompt_cache.disk_hits
    assert backend.prepare_voice([icl_voice]) is True
    assert backend.prompt_builds == builds and backend.prompt_cache.disk_hits == disk_hits + 1
    assert backend.forget_voices([icl_voice.sha256]) >= 1
    assert backend.prepare_voice([icl_voice]) is False


def test_auto_picks_ggml_only_for_files_it_can_run(gguf_dir: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    choice = choose_engine(Settings(data_dir=tmp_path, tts_model=str(gguf_dir), device="cpu"))
    assert choice.engine == "ggml" and "GGUF files (Q8_0)" in choice.why
    choice = choose_engine(Settings(data_dir=tmp_path, tts_model=str(tiny_checkpoint), device="cpu"))
    assert choice.engine == "torch" and "Res2Net scale is 4, the library needs 8" in choice.why
    choice = choose_engine(Settings(data_dir=tmp_path, tts_model=str(gguf_dir), backend="torch"))
    assert choice == type(choice)("torch", "VOICEBOX_BACKEND=torch")


def test_auto_takes_a_released_model_s_gguf_files_when_it_can_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A released model (a hub id) gets the GGML engine on a CPU when its GGUF files can be
    downloaded; offline and not cached, or with nothing published for it, the torch engine."""
    hub = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    choice = choose_engine(Settings(data_dir=tmp_path, tts_model=hub, device="cpu"))
    assert choice.engine == "ggml" and "can be downloaded" in choice.why
    assert "Q8_0 passes the quality guard" in choice.why
    q4 = choose_engine(Settings(data_dir=tmp_path, tts_model=hub, device="cpu", gguf_quant="Q4_K_M"))
    assert q4.engine == "ggml" and "Q4_K_M fails the quality guard" in q4.why
    other = choose_engine(Settings(data_dir=tmp_path, tts_model="someone/fine-tuned-tts", device="cpu"))
    assert other.engine == "torch" and "no GGUF files are published" in other.why
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = choose_engine(Settings(data_dir=tmp_path, tts_model=hub, device="cpu"))
    assert offline.engine == "torch" and "HF_HUB_OFFLINE is set" in offline.why


@pytest.fixture
def without_package(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``import qwentts_cpp_cpu`` fails, as where the package is not installed."""
    monkeypatch.setitem(sys.modules, "qwentts_cpp_cpu", None)
    probe.cache_clear()
    yield
    probe.cache_clear()


def test_without_the_package_the_torch_engine_speaks(
    without_package: None, gguf_dir: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    assert not probe().ok and "not installed" in probe().why
    auto = Settings(data_dir=tmp_path, tts_model=str(gguf_dir), device="cpu")
    assert choose_engine(auto).engine == "torch" and "not installed" in choose_engine(auto).why
    forced = Settings(data_dir=tmp_path, backend="ggml", tts_model=str(tiny_checkpoint), tts_model_large="",
                      device="cpu")
    engine: Any = local_backend(forced, FairLock())
    assert isinstance(engine, FallbackBackend) and engine.status()["engine"] == "ggml"
    status = engine.load()
    assert status["loaded"] and engine.status()["engine"] == "torch" and engine.name == "qwen3-tts"
    assert "not installed" in engine.status()["notice"] and "using the torch engine" in engine.status()["notice"]
    engine.unload()


def test_unload_and_load_again(backend: GGMLBackend, voice: VoiceSample) -> None:
    """The library's log hook is process-wide: unloading unhooks it before its callback is freed,
    so the next load (which logs) cannot call freed memory."""
    backend.unload()
    assert backend.loaded_size is None and not backend.status()["loaded"]
    import gc

    gc.collect()
    assert backend.load()["loaded"] and backend.loads >= 2
    events = list(backend.speak(request(voice, "Again.", frames=1, stream=True)))
    assert isinstance(events[-1], SpeechDone) and backend.last_profile.get("decode", 0) > 0
