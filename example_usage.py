#!/usr/bin/env python
"""Walk through voicebox's REST API with httpx against a running server, printing each step.

Start a server first (``python -m voicebox``), then:

    python example_usage.py --sample my_voice.wav
    python example_usage.py --sample my_voice.wav --base-url http://127.0.0.1:7860 --token SECRET
    python example_usage.py --sample my_voice.wav --user ada --password 'correct horse' --out takes/

The flow: health -> create a profile -> upload a sample (Whisper transcribes it) -> generate ->
download the audio (WAV and MP3) -> history and stats -> transcribe -> OpenAI-style speech ->
streamed speech -> clean up (unless ``--keep``). Exits with status 1 and the server's message on
the first failure. Credentials may also come from ``VOICEBOX_API_TOKEN`` or ``VOICEBOX_AUTH``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TEXT = "Hello! This is my cloned voice, speaking through the voicebox REST API."


class StepFailed(RuntimeError):
    """A request answered with an error; the message is the server's explanation."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:7860", help="server address")
    parser.add_argument("--sample", type=Path, required=True, help="a 5-30 s recording of the voice to clone")
    parser.add_argument(
        "--name", default=f"API example {time.strftime('%Y-%m-%d %H:%M:%S')}", help="profile name"
    )
    parser.add_argument("--text", default=TEXT, help="what the cloned voice should say")
    parser.add_argument("--out", type=Path, default=Path("example_output"), help="where to save the audio")
    parser.add_argument("--token", default=os.environ.get("VOICEBOX_API_TOKEN"), help="bearer token")
    parser.add_argument("--user", help="login user (or VOICEBOX_AUTH=user:password)")
    parser.add_argument("--password", help="login password")
    parser.add_argument("--keep", action="store_true", help="keep the profile and its generations")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a request")
    return parser.parse_args(argv)


def make_client(args: argparse.Namespace) -> httpx.Client:
    """An httpx client with the base URL and whichever credentials were given."""
    headers: dict[str, str] = {}
    auth: httpx.BasicAuth | None = None
    login = os.environ.get("VOICEBOX_AUTH", "")
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    elif args.user and args.password:
        auth = httpx.BasicAuth(args.user, args.password)
    elif ":" in login:
        auth = httpx.BasicAuth(*login.split(":", 1))
    return httpx.Client(base_url=args.base_url, headers=headers, auth=auth, timeout=args.timeout)


def check(response: httpx.Response) -> httpx.Response:
    """Raise :class:`StepFailed` with the server's explanation when the request failed."""
    if response.is_success:
        return response
    try:
        body = response.json()
        # /v1/ routes answer in OpenAI's shape, {"error": {"message": ...}}; the others {"detail": ...}
        detail = body["error"]["message"] if "error" in body else body.get("detail", response.text)
    except (ValueError, TypeError, KeyError, AttributeError):
        detail = response.text
    raise StepFailed(
        f"{response.request.method} {response.request.url.path} -> {response.status_code}: {detail}"
    )


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(client: httpx.Client, args: argparse.Namespace) -> None:
    """The whole flow; returns normally only if every step succeeded."""
    args.out.mkdir(parents=True, exist_ok=True)

    step("health")
    health = check(client.get("/health")).json()
    print(
        f"server {health['version']} is {health['status']}; TTS loaded: {health.get('tts_loaded')}, "
        f"device: {health.get('device')}"
    )

    step("create a profile")
    profile = check(
        client.post(
            "/profiles",
            # consent: you have the speaker's permission (a server several people use asks for it)
            json={"name": args.name, "description": "made by example_usage.py", "language": "English",
                  "consent": True},
        )
    ).json()
    print(f"created profile {profile['name']!r} with id {profile['id']}")
    try:
        flow(client, args, profile)
    finally:
        if not args.keep:
            cleanup(client, profile)


def flow(client: httpx.Client, args: argparse.Namespace, profile: dict[str, Any]) -> None:
    step("upload a voice sample (no transcript: the server transcribes it)")
    with args.sample.open("rb") as handle:
        sample = check(
            client.post(f"/profiles/{profile['id']}/samples", files={"file": (args.sample.name, handle)})
        ).json()
    print(f"sample {sample['id']}: {sample['duration']:.1f} s, transcribed as {sample['reference_text']!r}")
    for warning in sample.get("warnings", []):
        print(f"  warning: {warning}")

    step("generate speech")
    record = check(
        client.post("/generate", json={"profile_id": profile["id"], "text": args.text, "seed": 42})
    ).json()
    timings = record["timings"]
    print(
        f"generation {record['id']}: {record['duration']:.2f} s of audio in {timings['total']:.2f} s "
        f"(prompt {timings['prompt']:.2f}, generate {timings['generate']:.2f}, "
        f"decode {timings['decode']:.2f}; "
        f"voice prompt cached: {record['cache_hit']}); status {record['status']}"
    )
    if record.get("message"):
        print(f"  note: {record['message']}")

    step("download the audio")
    for fmt in ("wav", "mp3"):
        audio = check(client.get(record["audio_url"], params={"format": fmt}))
        path = args.out / f"generation.{fmt}"
        path.write_bytes(audio.content)
        print(f"saved {path} ({len(audio.content):,} bytes, {audio.headers['content-type']})")

    step("history")
    history = check(client.get("/history", params={"profile_id": profile["id"]})).json()
    stats = check(client.get("/history/stats")).json()
    print(
        f"{history['total']} generation(s) for this profile; {stats['count']} in all, "
        f"{stats['total_seconds']:.1f} s of audio"
    )

    step("transcribe a clip")
    with args.sample.open("rb") as handle:
        transcript = check(client.post("/transcribe", files={"file": (args.sample.name, handle)})).json()
    print(f"transcribed {transcript['duration']:.1f} s ({transcript['language']}): {transcript['text']!r}")

    step("OpenAI-compatible speech")
    speech = check(
        client.post(
            "/v1/audio/speech",
            json={"model": "tts-1", "input": args.text, "voice": profile["name"], "response_format": "wav"},
        )
    )
    path = args.out / "speech.wav"
    path.write_bytes(speech.content)
    print(f"saved {path} ({len(speech.content):,} bytes; history id {speech.headers.get('x-generation-id')})")

    step("streamed speech (raw 16-bit PCM, 24 kHz mono)")
    started, first, size = time.perf_counter(), None, 0
    path = args.out / "stream.pcm"
    with client.stream(
        "POST",
        "/v1/audio/speech",
        json={"input": args.text, "voice": profile["id"], "response_format": "pcm", "stream": True},
    ) as response:
        if not response.is_success:
            response.read()
            check(response)
        with path.open("wb") as handle:
            for chunk in response.iter_bytes():
                first = first if first is not None else time.perf_counter() - started
                size += len(chunk)
                handle.write(chunk)
    print(f"saved {path}: {size:,} bytes ({size / 48000:.2f} s); first audio after {first or 0:.2f} s")


def cleanup(client: httpx.Client, profile: dict[str, Any]) -> None:
    """Delete the profile's generations (audio included) and the profile (samples included)."""
    step("clean up")
    items = check(client.get("/history", params={"profile_id": profile["id"], "limit": 1000})).json()["items"]
    for item in items:
        check(client.delete(f"/history/{item['id']}"))
    check(client.delete(f"/profiles/{profile['id']}"))
    print(f"deleted {len(items)} generation(s) and profile {profile['id']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.sample.is_file():
        print(
            f"example_usage: {args.sample} is not a file; pass --sample with a 5-30 s recording",
            file=sys.stderr,
        )
        return 2
    try:
        with make_client(args) as client:
            run(client, args)
    except (StepFailed, httpx.HTTPError) as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print("\nAll steps succeeded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
