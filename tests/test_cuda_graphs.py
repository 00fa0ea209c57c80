"""The CUDA-graphs frame source (faster-qwen3-tts): when it is chosen, that its calls match the
installed package, and that the engine routes requests through it correctly.

No GPU is needed (CI has none): the package's graph code itself only runs on CUDA, so the
routing test stands in voicebox's own loop behind the adapter's interface (the real model and
the real codec still run). What this file cannot show - the graphs replaying on a GPU - is
measured by ``bench/tts_speed.py --device cuda`` when a GPU is at hand.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from voicebox import audio
from voicebox.engines import cuda_graphs
from voicebox.engines.cuda_graphs import GraphedTalker, PredictorSampling, wanted
from voicebox.engines.fast_talker import FrameStats, TalkerInputs
from voicebox.engines.params import make_params
from voicebox.engines.prompt_cache import PromptCache
from voicebox.engines.tts import SAMPLES_PER_FRAME, ReferenceSample, TTSEngine

JFK_TEXT = "And so, my fellow Americans, ask not what your country can do for you."


def test_graphs_are_wanted_only_on_cuda_with_the_package() -> None:
    assert wanted("off", "cuda") == (False, "VOICEBOX_CUDA_GRAPHS=off")
    use, why = wanted("auto", "cpu")
    assert not use and "cpu" in why
    use, why = wanted("auto", "cuda")
    assert use == cuda_graphs.installed()
    assert use or "requirements-cuda.txt" in why


def test_adapter_calls_match_the_installed_package() -> None:
    """Guards against API drift: every argument the adapter passes exists in the release it pins."""
    pytest.importorskip(cuda_graphs.PACKAGE)
    from importlib.metadata import version

    from faster_qwen3_tts.predictor_graph import PredictorGraph
    from faster_qwen3_tts.streaming import fast_generate_streaming
    from faster_qwen3_tts.talker_graph import TalkerGraph

    assert version("faster-qwen3-tts") == cuda_graphs.TESTED_VERSION
    source = inspect.getsource(cuda_graphs)
    for function, names in (
        (fast_generate_streaming, ["talker", "talker_input_embeds", "attention_mask", "trailing_text_hiddens",
                                   "tts_pad_embed", "config", "predictor_graph", "talker_graph", "max_new_tokens",
                                   "min_new_tokens", "temperature", "top_k", "top_p", "do_sample",
                                   "repetition_penalty", "chunk_size"]),
        (PredictorGraph.__init__, ["device", "dtype", "do_sample", "top_k", "top_p", "temperature"]),
        (TalkerGraph.__init__, ["device", "dtype", "max_seq_len"]),
    ):
        parameters = inspect.signature(function).parameters
        for name in names:
            assert name in parameters, f"{function.__qualname__} has no {name!r}"
            assert f"{name}=" in source
    assert {"run", "capture"} <= set(dir(PredictorGraph)) and {"run", "capture", "prefill_kv"} <= set(dir(TalkerGraph))


def test_predictor_sampling_comes_from_the_sub_talker_settings() -> None:
    sampling = PredictorSampling.from_kwargs(
        {"subtalker_dosample": False, "subtalker_top_k": 30, "subtalker_top_p": 0.85, "subtalker_temperature": 0.6}
    )
    assert sampling == PredictorSampling(do_sample=False, top_k=30, top_p=0.85, temperature=0.6)
    assert hash(sampling) == hash(PredictorSampling(False, 30, 0.85, 0.6))  # a graph cache key


class LoopBehindTheAdapter:
    """The adapter's interface (``fits``, ``frames(inputs, max_frames)``, ``stats``) served by
    voicebox's real decode loop, with faster-qwen3-tts's frame semantics: frames stop at
    end-of-speech (never yielded) or after ``max_frames``."""

    def __init__(self, engine: TTSEngine, room: int = 10_000) -> None:
        self.loop = engine._fast
        self.room = room
        self.calls: list[int] = []
        self.stats = FrameStats()

    def fits(self, inputs: TalkerInputs, max_frames: int) -> bool:
        return int(inputs.inputs_embeds.shape[0]) == 1 and int(inputs.inputs_embeds.shape[1]) + max_frames < self.room

    def frames(self, inputs: TalkerInputs, max_frames: int) -> Iterator[Any]:
        self.calls.append(max_frames)
        eos = inputs.kwargs.get("eos_token_id")
        for count, frame in enumerate(self.loop.frames(inputs)):
            if count >= max_frames or (eos is not None and int(frame[0, 0]) == eos):
                return
            yield frame
        self.stats = self.loop.stats


@pytest.fixture()
def engines(tiny_checkpoint: Path) -> tuple[TTSEngine, TTSEngine]:
    plain = TTSEngine({"0.6B": str(tiny_checkpoint)}, device="cpu", prompt_cache=PromptCache(None), quantize="off")
    graphed = TTSEngine({"0.6B": str(tiny_checkpoint)}, device="cpu", prompt_cache=PromptCache(None), quantize="off")
    plain.load()
    graphed.load()
    return plain, graphed


@pytest.fixture(scope="module")
def reference(jfk_reference: Path) -> list[ReferenceSample]:
    return [ReferenceSample(jfk_reference, audio.sha256_file(jfk_reference), JFK_TEXT)]


def test_cpu_engine_reports_why_graphs_are_off(engines) -> None:
    status = engines[0].status()
    assert status["decode_loop"] == "voicebox" and "cpu" in status["cuda_graphs"]


def test_engine_routes_requests_through_the_graphs(engines, reference) -> None:
    plain, graphed = engines
    stand_in = LoopBehindTheAdapter(graphed)
    graphed._graphs = stand_in
    assert graphed.status()["decode_loop"] == "cuda-graphs"
    params = make_params(seed=3, max_new_tokens=9, do_sample=False)
    text = "First sentence here. A second one follows."

    expected = plain.synthesize(text, reference, params=params)
    take = graphed.synthesize(text, reference, params=params)
    # capped at max_new_tokens - 1 frames; random weights never stop, so the chunk ran away and was
    # retried once with another seed, through the graphs again, as the loop does
    assert stand_in.calls == [8, 8] and take.chunks == 1 and graphed.graph_generations == 2
    assert np.array_equal(take.audio, expected.audio)
    assert take.status == expected.status == "incomplete"

    streamed = list(graphed.stream(text, reference, params=params))
    result = streamed[-1].result
    assert np.concatenate([c.audio for c in streamed]).shape == result.audio.shape
    assert stand_in.calls == [8, 8, 8] and len(result.audio) == len(expected.audio)  # streams never retry
    assert result.timings["first_audio"] > 0 and graphed.last_profile["frames"] == len(result.audio) // SAMPLES_PER_FRAME


def test_requests_that_do_not_fit_use_the_loop(engines, reference) -> None:
    _, graphed = engines
    stand_in = LoopBehindTheAdapter(graphed, room=1)  # no prompt fits
    graphed._graphs = stand_in
    before = graphed.fast_generations
    take = graphed.synthesize("Too long for the graphs.", reference, params=make_params(seed=1, max_new_tokens=5))
    assert stand_in.calls == [] and graphed.fast_generations > before
    assert len(take.audio) == 4 * SAMPLES_PER_FRAME


def test_a_failed_capture_leaves_the_loop_in_charge(tiny_checkpoint: Path, monkeypatch) -> None:
    monkeypatch.setattr("voicebox.engines.qwen_loader.graphs_wanted", lambda setting, device: (True, ""))

    def broken(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(GraphedTalker, "__init__", broken)
    engine = TTSEngine({"0.6B": str(tiny_checkpoint)}, device="cpu", prompt_cache=PromptCache(None))
    status = engine.load()
    assert status["decode_loop"] == "voicebox" and "capturing CUDA graphs failed" in status["cuda_graphs"]


class FailingGraphs(LoopBehindTheAdapter):
    def frames(self, inputs: TalkerInputs, max_frames: int) -> Iterator[Any]:
        self.calls.append(max_frames)
        raise RuntimeError("CUDA error: operation failed during graph replay")
        yield  # a generator, like the real one


def test_graphs_that_fail_at_run_time_hand_over_to_the_loop(engines, reference) -> None:
    plain, graphed = engines
    graphed._graphs = FailingGraphs(graphed)
    params = make_params(seed=4, max_new_tokens=6, do_sample=False)
    expected = plain.synthesize("Falls back.", reference, params=params)
    take = graphed.synthesize("Falls back.", reference, params=params)
    assert np.array_equal(take.audio, expected.audio)  # the same take, made by the loop
    status = graphed.status()
    assert status["decode_loop"] == "voicebox" and "failed while generating" in status["cuda_graphs"]
    streamed = list(graphed.stream("Falls back.", reference, params=params))  # the loop from now on
    assert len(streamed[-1].result.audio) == len(expected.audio)


def test_cuda_graphs_setting_is_checked(tiny_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="auto or off"):
        TTSEngine({"0.6B": str(tiny_checkpoint)}, cuda_graphs="always")
