"""The CPU loop's precision chosen by timing this machine (issue #17): real layers of the tiny
checkpoint, timed in fp32 and fp16; the choice remembered per machine; int8 never chosen (it
failed the quality guard); a checkpoint too small to time keeps the default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from voicebox.engines import precision_choice
from voicebox.engines.precision import LoopPrecision
from voicebox.engines.qwen_loader import load_model


@pytest.fixture(scope="module")
def inner(tiny_checkpoint: Path) -> Any:
    """The tiny checkpoint's model on the CPU in fp32, as the loop sees it."""
    return load_model(str(tiny_checkpoint), "cpu", "float32", "0.6B").model


def test_a_checkpoint_too_small_to_time_keeps_the_default(inner: Any, tmp_path: Path) -> None:
    memory = tmp_path / "loop-precision.json"
    choice = precision_choice.choose(inner, memory)
    assert choice.precision == "fp16" and "too small to time" in choice.why
    assert not memory.exists()  # nothing timed, nothing remembered


def test_the_fastest_allowed_precision_is_timed_once_and_remembered(
    inner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision_choice, "MIN_HIDDEN", 0)  # time the tiny layers as if real
    memory = tmp_path / "loop-precision.json"
    first = precision_choice.choose(inner, memory)
    assert set(first.frame_ms) == {"fp16", "fp32"}  # int8 failed the guard: never timed, never chosen
    assert all(ms > 0 for ms in first.frame_ms.values())
    assert first.precision == min(first.frame_ms, key=first.frame_ms.__getitem__)
    assert first.why.startswith(f"timed on this CPU: {first.precision}") and "int8 failed the quality guard" in first.why
    assert not first.remembered

    stored = json.loads(memory.read_text())
    (entry,) = stored.values()
    assert entry["precision"] == first.precision and entry["cpu"] == precision_choice.cpu_name()

    again = precision_choice.choose(inner, memory)  # the next start: no timing
    assert again.remembered and (again.precision, again.frame_ms) == (first.precision, first.frame_ms)


def test_an_unreadable_memory_is_timed_again_and_replaced(
    inner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision_choice, "MIN_HIDDEN", 0)
    memory = tmp_path / "loop-precision.json"
    memory.write_text("{ not json")
    choice = precision_choice.choose(inner, memory)
    assert not choice.remembered and choice.precision in ("fp16", "fp32")
    assert json.loads(memory.read_text())  # a good file replaced the broken one


def test_another_machine_or_model_is_not_given_this_choice(inner: Any) -> None:
    layers = precision_choice.loop_layers(inner)
    shapes = [(name, linear.in_features, linear.out_features, count) for name, linear, count in layers]
    assert precision_choice.machine_key(shapes) != precision_choice.machine_key(shapes[:-1])
    # each frame runs every talker layer once and every predictor layer 15 times
    counts = dict((name, count) for name, _, count in layers)
    talker, predictor = inner.talker.model.layers, inner.talker.code_predictor.model.layers
    assert counts["talker.qkv"] == len(talker) and counts["predictor.qkv"] == 15 * len(predictor)


def test_the_loop_says_how_its_precision_was_chosen(inner: Any) -> None:
    auto = LoopPrecision("auto", keep_fp32=True)  # the module's model stays whole
    auto.build(inner, "cpu", "float32")
    assert auto.precision == "fp16" and "too small to time" in auto.why
    forced = LoopPrecision("off")
    forced.build(inner, "cpu", "float32")
    assert forced.precision == "fp32" and forced.why == "VOICEBOX_CPU_INT8=off"
