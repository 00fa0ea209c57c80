"""Can the GGML engine run on this machine? Checked once, without ever crashing the process.

The engine is qwentts.cpp, a C++/GGML port of Qwen3-TTS, from the PyPI package
``realtimetts-qwen-native-cpu`` (import ``qwentts_cpp_cpu``): a ctypes binding over a bundled
``libqwen.so`` + ``libggml*.so`` built for Linux x86-64 with an AVX2/FMA/F16C/BMI2 baseline, no
CUDA. Its Python API (0.4.2, C ABI 5, native qwentts.cpp 4d80a09):

* ``QwenTTS(talker_gguf, codec_gguf, cpu_threads=N, cpu_codec_threads=0, cpu_stream_frames=0,
  max_batch=1, codec_chunk_sec=24)`` loads both files (``qt_init_cpu``); one context, its own lock.
* ``extract_voice_ref(audio_24k) -> VoiceRef(ref_spk_emb [D], ref_codes [16, T])``: the speaker
  embedding (ECAPA) and the reference's codec codes (Mimi encoder + RVQ); needs >= 1920 samples.
* ``synthesize(text=, lang=, ref_spk_emb=, ref_codes=, ref_text=, seed=, max_new_tokens=, do_sample=,
  temperature=, top_k=, top_p=, repetition_penalty=, subtalker_*=) -> (float32 audio, 24000)``:
  x-vector mode with the embedding alone, in-context (ICL) mode with codes + transcript too;
  ``lang`` is a name from the model's table or ``auto``. ``max_new_tokens`` frames at most (1920
  samples each), HF sampling chain, seeded (``seed=-1``: random).
* ``stream(..., cancel_event=)``: the same, yielding audio as the stateful codec decodes it (a
  producer thread runs the native call; the event cancels it between frames).
* ``set_log_callback(fn(level, message))`` (process-wide) receives, among others, ``[Perf] ... ms``
  lines per synthesis (prefill, talker, code predictor, codec).

A CPU without the baseline instructions would die of SIGILL inside the library, and a missing or
mismatched library raises only on load, so :func:`probe` checks the CPU flags, the import, the
library load, its ABI and that it is the CPU-only build before anything else touches it.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

#: The release this engine was written and tested against (requirements.txt pins it).
PINNED_VERSION = "0.4.2"
#: The C ABI of that release's ``libqwen.so``; another ABI means other struct layouts.
ABI_VERSION = 5
#: Instructions the wheel's ggml is compiled to use (its baseline), as /proc/cpuinfo names them.
CPU_FLAGS = ("avx2", "fma", "f16c", "bmi2")


@dataclass(frozen=True)
class Runtime:
    """The outcome of :func:`probe`: whether the library can run, and why not in words."""

    ok: bool
    why: str
    version: str = ""
    native: str = ""


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux), or ``None`` where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def thread_count() -> int:
    """Threads for the library: the CPUs this process may use (a container's quota included)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, min(usable, os.cpu_count() or usable, 256))


@functools.lru_cache(maxsize=1)
def probe() -> Runtime:
    """Whether qwentts.cpp can run here; the answer is cached for the process."""
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return Runtime(False, f"the GGML engine's wheel is built for Linux x86-64, not {platform.system()} "
                              f"{platform.machine()}")
    flags = cpu_flags()
    missing = [flag for flag in CPU_FLAGS if flags is not None and flag not in flags]
    if missing:
        return Runtime(False, f"this CPU lacks {', '.join(missing).upper()}, which the GGML engine needs")
    try:
        import qwentts_cpp_cpu as native
    except ImportError as exc:
        return Runtime(False, f"realtimetts-qwen-native-cpu is not installed ({exc})")
    version = str(getattr(native, "__version__", "?"))
    try:
        library = native.QwenLibrary()
        cpu_only = library.cpu_only()
        abi = int(library.native_abi)
        built = library.version()
    except Exception as exc:  # noqa: BLE001 - any failure to load means "use the torch engine"
        return Runtime(False, f"the qwentts.cpp library does not load ({type(exc).__name__}: {exc})", version)
    if abi != ABI_VERSION or not cpu_only:
        return Runtime(False, f"qwentts.cpp {built} has C ABI {abi}{'' if cpu_only else ' (not the CPU build)'}; "
                              f"voicebox needs ABI {ABI_VERSION} (realtimetts-qwen-native-cpu=={PINNED_VERSION})",
                       version, built)
    note = "" if version == PINNED_VERSION else f" (tested with {PINNED_VERSION})"
    return Runtime(True, f"realtimetts-qwen-native-cpu {version}{note}, qwentts.cpp {built}", version, built)
