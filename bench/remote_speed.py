"""Throughput of a speech server (vLLM-Omni serving Qwen3-TTS Base) under concurrent voice-clone requests.

At each concurrency level (1, 4, 16 and 64 by default) it keeps that many streamed
``POST /v1/audio/speech`` requests in flight until ``--requests`` of them have finished, and
reports requests per second, time to first audio (the first audio delta of the stream after the
request was sent), the real-time factor (wall seconds / audio seconds of each request; below 1 is
faster than real time), audio seconds made per wall second over all requests, and the errors.

The requests are the ones voicebox's remote backend sends (docs/remote-protocol.md, vLLM-Omni
0.30.0): SSE (``stream_format="sse"``) with 16-bit PCM at 24 kHz, an explicit seed and
``max_new_tokens``, and the reference registered once in the server's voice registry
(``POST /v1/audio/voices``) and named in ``voice``; ``--inline-reference`` (or a server without
the registry) sends it with every request as a base64 WAV data URL instead. A stream that ends in
``speech.audio.error`` with ``partial_audio`` because the frame cap was reached counts as a take
that hit the cap (``hit_cap``), with its audio, as voicebox counts it; random-weight checkpoints
never say end-of-speech, so with them every request does.

Results go to ``bench/results/remote_speed_<label>.json`` (with the client machine and what the
server says of itself: ``/health``, ``/version``, ``/v1/models``, plus ``--fact KEY=VALUE`` pairs
from the caller, such as the GPU) and a line per level is printed. Run from the repo root::

    .venv/bin/python bench/remote_speed.py --url http://127.0.0.1:8091 --label h200_0.6B \\
        [--concurrency 1 4 16 64] [--requests N] [--max-new-tokens 64] [--api-key KEY]

``scripts/vllm_omni_gpu_check.sh`` runs it against vLLM-Omni on a full-size random-weight 0.6B
checkpoint. Only httpx, numpy and soundfile are needed: no model is loaded here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the same reference, transcript and text as the local speed bench (a light module: no torch)
from tts_bench_setup import REFERENCE, REFERENCE_TEXT, REPO_ROOT, RESULTS, TEXT  # noqa: E402
SPEECH = "/v1/audio/speech"
VOICES = "/v1/audio/voices"
SAMPLE_RATE = 24_000  # Qwen3-TTS' own rate, asked for explicitly (no resampling anywhere)
MAX_REFERENCE_SECONDS = 30.0  # the server refuses longer references
CAP_MESSAGE = "did not emit codec EOS"  # vLLM-Omni 0.30.0's Qwen3TTSCodecLimitError
LEVEL_KEYS = (
    "concurrency", "requests", "ok", "hit_cap", "errors", "error_samples", "wall_s", "requests_per_s",
    "audio_seconds", "audio_seconds_per_s", "first_audio_s", "total_s", "rtf",
)


@dataclass
class Outcome:
    """One request: when its first audio came, when it ended, how much audio, or why it failed."""

    ok: bool
    first_audio_s: float | None = None
    total_s: float = 0.0
    audio_seconds: float = 0.0
    hit_cap: bool = False
    error: str = ""


def reference_wav(path: Path | None) -> tuple[bytes, float, str]:
    """The reference as 16-bit mono WAV bytes, its length in seconds, and its transcript.

    ``path``: any file soundfile reads (its transcript comes from ``--reference-text``). Without
    one: the test recording ``../shared/data/jfk.flac`` when present, else 4 s of a synthetic
    voiced sound (enough for random weights)."""
    text = REFERENCE_TEXT
    if path is None and REFERENCE.is_file():
        path = REFERENCE
    if path is not None:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)[: int(rate * MAX_REFERENCE_SECONDS)]
        if path != REFERENCE:
            text = ""
    else:
        rate = SAMPLE_RATE
        t = np.arange(rate * 4) / rate
        phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.5 * t)) / rate
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        samples = (0.2 * voiced / np.max(np.abs(voiced))).astype("float32")
        text = "A synthetic reference sound."
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), len(samples) / rate, text


def build_request(args: argparse.Namespace, reference: dict[str, Any], seed: int) -> dict[str, Any]:
    """The body voicebox's remote backend sends for one sentence chunk (docs/remote-protocol.md)."""
    body: dict[str, Any] = {
        "input": args.text,
        "task_type": "Base",
        "language": args.language,
        **reference,
        "seed": seed,
        "response_format": "pcm",
        "sample_rate": SAMPLE_RATE,
        "stream": True,
        "stream_format": "sse",
    }
    if args.model:
        body["model"] = args.model
    if args.max_new_tokens:
        body["max_new_tokens"] = args.max_new_tokens
    return body


def inline_reference(wav: bytes, ref_text: str) -> dict[str, Any]:
    """The reference in the request: with its transcript, else speaker embedding only."""
    audio = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
    if ref_text:
        return {"ref_audio": audio, "ref_text": ref_text}
    return {"ref_audio": audio, "x_vector_only_mode": True}


async def register_voice(client: httpx.AsyncClient, base: str, wav: bytes,
                         ref_text: str) -> tuple[str | None, str]:
    """Register the reference once (named by its content, as voicebox names them); (name, why not)."""
    name = "vb-bench-" + hashlib.sha256(wav + ref_text.encode()).hexdigest()[:16]
    data = {"name": name, "consent": "voicebox-bench"}
    if ref_text:
        data["ref_text"] = ref_text
    try:
        files = {"audio_sample": ("reference.wav", wav, "audio/wav")}
        response = await client.post(base + VOICES, data=data, files=files, timeout=60)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}: {response.text[:200]}"
    return name, ""


async def one_request(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Outcome:
    """Send one request and read its SSE stream to the end."""
    started = time.perf_counter()
    first: float | None = None
    audio_bytes = 0
    event, data_lines = "", []
    try:
        async with client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode("utf-8", "replace")[:300]
                return Outcome(False, total_s=time.perf_counter() - started,
                               error=f"HTTP {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    continue
                if line.startswith("data:"):
                    data_lines.append(line[5:].strip())
                    continue
                if line or not data_lines:
                    continue
                payload = json.loads("\n".join(data_lines))
                kind = payload.get("type") or event
                event, data_lines = "", []
                if kind == "speech.audio.delta":
                    size = len(base64.b64decode(payload.get("audio") or ""))
                    if size and first is None:
                        first = time.perf_counter() - started
                    audio_bytes += size
                elif kind == "speech.audio.done":
                    break
                elif kind == "speech.audio.error":
                    error = payload.get("error") or {}
                    message = str(error.get("message", error))
                    total = time.perf_counter() - started
                    if error.get("partial_audio") and CAP_MESSAGE in message and audio_bytes:
                        return Outcome(True, first, total, audio_bytes / 2 / SAMPLE_RATE, hit_cap=True)
                    return Outcome(False, total_s=total, error=f"speech.audio.error: {message[:300]}")
            else:
                return Outcome(False, total_s=time.perf_counter() - started,
                               error="the stream ended without done")
    except (httpx.HTTPError, ValueError) as exc:
        return Outcome(False, total_s=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    total = time.perf_counter() - started
    if audio_bytes == 0:
        return Outcome(False, total_s=total, error="the stream ended without audio")
    return Outcome(True, first, total, audio_bytes / 2 / SAMPLE_RATE)


def summary(values: list[float]) -> dict[str, float] | None:
    """Median, mean, 90th percentile (nearest rank), min and max; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 4), "mean": round(statistics.fmean(ordered), 4),
            "p90": round(p90, 4), "min": round(ordered[0], 4), "max": round(ordered[-1], 4)}


async def run_level(client: httpx.AsyncClient, url: str, args: argparse.Namespace, reference: dict[str, Any],
                    concurrency: int, requests: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> Outcome:
        async with gate:
            return await one_request(client, url, build_request(args, reference, args.seed + i))

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(limited(i) for i in range(requests)))
    wall = time.perf_counter() - started
    good = [o for o in outcomes if o.ok]
    audio = sum(o.audio_seconds for o in good)
    errors = [o.error for o in outcomes if not o.ok]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": len(good),
        "hit_cap": sum(o.hit_cap for o in good),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "wall_s": round(wall, 4),
        "requests_per_s": round(len(good) / wall, 4),
        "audio_seconds": round(audio, 3),
        "audio_seconds_per_s": round(audio / wall, 4),
        "first_audio_s": summary([o.first_audio_s for o in good if o.first_audio_s is not None]),
        "total_s": summary([o.total_s for o in good]),
        "rtf": summary([o.total_s / o.audio_seconds for o in good if o.audio_seconds > 0]),
    }


async def server_facts(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    """What the server says of itself; a route it lacks is recorded with its status, not raised."""
    facts: dict[str, Any] = {"url": base}
    for key, path in (("health", "/health"), ("version", "/version"), ("models", "/v1/models")):
        try:
            response = await client.get(base + path, timeout=10)
        except httpx.HTTPError as exc:
            facts[key] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:200]
        if key == "models" and isinstance(body, dict):
            body = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
        facts[key] = {"status": response.status_code, "body": body}
    return facts


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "httpx": httpx.__version__}


def parse_facts(pairs: list[str]) -> dict[str, str]:
    facts = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--fact wants KEY=VALUE, not {pair!r}")
        facts[key] = value
    return facts


def safe_label(label: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")
    if not cleaned:
        raise SystemExit("--label needs letters or digits")
    return cleaned


def command_line(argv: list[str]) -> str:
    """The command as run, with an --api-key value masked."""
    shown, hide = [], False
    for arg in argv:
        if hide:
            shown.append("<key>")
            hide = False
        elif arg == "--api-key":
            shown.append(arg)
            hide = True
        else:
            shown.append("--api-key=<key>" if arg.startswith("--api-key=") else arg)
    return " ".join(["bench/remote_speed.py", *shown])


async def bench(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    base = args.url.rstrip("/")
    wav, ref_seconds, ref_text = reference_wav(args.reference)
    if args.reference_text is not None:
        ref_text = args.reference_text
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    widest = max(args.concurrency)
    limits = httpx.Limits(max_connections=widest + 4, max_keepalive_connections=widest + 4)
    timeout = httpx.Timeout(args.timeout)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        facts = await server_facts(client, base)
        facts["facts"] = parse_facts(args.fact)
        voice, why_inline = (None, "--inline-reference") if args.inline_reference else \
            await register_voice(client, base, wav, ref_text)
        reference = {"voice": voice} if voice else inline_reference(wav, ref_text)
        print("reference: " + (f"registered as {voice}" if voice else f"inline ({why_inline})"), flush=True)
        for i in range(args.warmup):
            body = build_request(args, reference, args.seed - 1 - i)
            outcome = await one_request(client, base + SPEECH, body)
            print(f"warm-up {i + 1}: " + ("ok" if outcome.ok else outcome.error), flush=True)
        levels = []
        for concurrency in args.concurrency:
            requests = args.requests or max(4, 2 * concurrency)
            level = await run_level(client, base + SPEECH, args, reference, concurrency, requests)
            print(row(level), flush=True)
            levels.append(level)
        if voice:
            try:
                await client.delete(f"{base}{VOICES}/{voice}", timeout=30)
            except httpx.HTTPError:
                pass  # the server keeps an unused voice; nothing else depends on it
    request = build_request(args, reference, args.seed)
    if "ref_audio" in request:
        request["ref_audio"] = f"data:audio/wav;base64,<{len(wav)} bytes>"
    return {
        "benchmark": "remote_speed",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(argv),
        "label": args.label,
        "machine": machine(),
        "server": facts,
        "reference_mode": "registered" if voice else "inline",
        "reference_inline_reason": "" if voice else why_inline,
        "reference_seconds": round(ref_seconds, 3),
        "request": request,
        "text_chars": len(args.text),
        "notes": "first_audio_s: first audio delta of the stream after sending; rtf: wall seconds per "
                 "audio second of one request (below 1 is faster than real time); audio_seconds_per_s: "
                 "audio made per wall second over all requests of a level; requests_per_s counts finished "
                 "ones; hit_cap: finished at max_new_tokens without end-of-speech (counted with their audio)",
        "levels": levels,
    }


def row(level: dict[str, Any]) -> str:
    def median(key: str) -> str:
        value = level[key]
        return f"{value['median']:.3f}" if value else "-"

    return (f"concurrency {level['concurrency']:>3}: {level['ok']}/{level['requests']} ok "
            f"({level['hit_cap']} at the cap), {level['requests_per_s']:.2f} req/s, first audio "
            f"{median('first_audio_s')} s, rtf {median('rtf')} (medians), "
            f"{level['audio_seconds_per_s']:.2f} audio s/s, {level['errors']} errors")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the speech server's base URL, e.g. http://127.0.0.1:8091")
    parser.add_argument("--label", required=True, help="names the result file: remote_speed_<label>.json")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per level (default: twice the concurrency, at least 4)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="requests sent one at a time first, not counted")
    parser.add_argument("--max-new-tokens", type=int, default=0,
                        help="frame cap per request, 12.5 a second (0: none sent, the server's own)")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--language", default="English")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference audio (default: ../shared/data/jfk.flac, else a synthetic sound)")
    parser.add_argument("--reference-text", default=None, help="its transcript (empty: x-vector only)")
    parser.add_argument("--inline-reference", action="store_true",
                        help="send the reference with every request instead of registering it once")
    parser.add_argument("--model", default="",
                        help="the request's model field (default: none, the server's one)")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    parser.add_argument("--api-key", default=os.environ.get("VOICEBOX_REMOTE_API_KEY", ""),
                        help="bearer key (default: $VOICEBOX_REMOTE_API_KEY)")
    parser.add_argument("--fact", action="append", default=[], metavar="KEY=VALUE",
                        help="a fact about the server to record (GPU, versions, command); repeatable")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.label = safe_label(args.label)
    if min(args.concurrency) < 1 or args.requests < 0 or args.warmup < 0:
        parser.error("--concurrency levels must be at least 1, --requests and --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    report = asyncio.run(bench(args, argv))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"remote_speed_{args.label}.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 1 if any(level["errors"] for level in report["levels"]) else 0


if __name__ == "__main__":
    sys.exit(main())
