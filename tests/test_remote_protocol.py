"""The remote backend's wire format against vLLM-Omni's documented examples (0.30.0; see
``docs/remote-protocol.md``): request bodies, SSE events, audio bodies and error shapes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebox.engines.params import GenerationParams
from voicebox.remote.protocol import (
    AudioDelta,
    ChunkRequest,
    PcmStream,
    StreamDone,
    StreamError,
    VoiceRef,
    decode_body,
    error_message,
    frames_of,
    is_codec_limit,
    speech_body,
    sse_events,
)
from voicebox.remote.voices import build_reference, reference_key
from voicebox.speech import VoiceSample

PARAMS = GenerationParams(temperature=0.7, top_k=30, top_p=0.85, repetition_penalty=1.1, seed=42)


def tone(seconds: float, rate: int = 24_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def test_inline_reference_body_has_the_documented_base_fields() -> None:
    wav = b"RIFF....WAVEfake"
    body = speech_body(ChunkRequest("Hello there.", "English", VoiceRef(wav=wav, text=" The transcript. "), PARAMS,
                                    seed=1234, max_new_tokens=87, model="Qwen/Qwen3-TTS-12Hz-0.6B-Base"))
    assert body["input"] == "Hello there." and body["task_type"] == "Base" and body["language"] == "English"
    assert body["model"] == "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    prefix = "data:audio/wav;base64,"
    assert body["ref_audio"].startswith(prefix) and base64.b64decode(body["ref_audio"][len(prefix):]) == wav
    assert body["ref_text"] == "The transcript." and "x_vector_only_mode" not in body and "voice" not in body
    assert body["max_new_tokens"] == 87 and body["seed"] == 1234
    # 0.30.0 reads sampling options from extra_params (top-level names would be ignored)
    assert body["extra_params"] == {"temperature": 0.7, "top_k": 30, "top_p": 0.85, "repetition_penalty": 1.1}
    assert "temperature" not in body
    assert body["stream"] is True and body["stream_format"] == "sse"
    assert body["response_format"] == "pcm" and body["sample_rate"] == 24_000
    json.dumps(body)  # it is JSON


def test_a_sample_without_transcript_clones_from_the_speaker_embedding_only() -> None:
    body = speech_body(ChunkRequest("Hi.", "Auto", VoiceRef(wav=b"x", text=""), PARAMS, 1, 20))
    assert body["x_vector_only_mode"] is True and "ref_text" not in body and "model" not in body


def test_registered_voice_greedy_and_bounds() -> None:
    greedy = GenerationParams(do_sample=False, seed=3)
    body = speech_body(ChunkRequest("Hi.", "Auto", VoiceRef(name="vb-abc"), greedy, 3, 99_999, stream_format=None,
                                    response_format="wav"))
    assert body["voice"] == "vb-abc" and "ref_audio" not in body and "ref_text" not in body
    assert body["extra_params"]["temperature"] == 0.0  # greedy on vLLM
    assert body["max_new_tokens"] == 4096  # the server's upper bound
    assert body["stream"] is False and "stream_format" not in body
    with pytest.raises(ValueError):
        speech_body(ChunkRequest("Hi.", "Auto", VoiceRef(name="v"), greedy, 3, 5, response_format="mp3"))
    with pytest.raises(ValueError):
        VoiceRef()


def test_sse_events_from_the_documented_examples() -> None:
    audio = tone(0.1)
    delta = {"type": "speech.audio.delta", "audio": base64.b64encode(pcm(audio)).decode(), "response_format": "pcm"}
    done = {"type": "speech.audio.done", "usage": {"input_tokens": 119, "output_tokens": 77, "total_tokens": 196,
                                                   "input_token_details": {"text_tokens": 18, "audio_tokens": 101}}}
    error = {"type": "speech.audio.error", "error": {"message": "boom", "type": "server_error", "param": None,
                                                     "code": 500}}
    text = (f": keep-alive comment\n\nevent: speech.audio.delta\ndata: {json.dumps(delta)}\n\n"
            f"event: speech.audio.done\r\ndata: {json.dumps(done)}\r\n\r\n"
            f"event: speech.audio.error\ndata: {json.dumps(error)}\n\nevent: other.thing\ndata: {{}}\n\n")
    events = list(sse_events(text.splitlines(keepends=True)))
    assert [type(e) for e in events] == [AudioDelta, StreamDone, StreamError]
    assert np.allclose(events[0].audio, audio, atol=1e-3)
    assert events[1].output_tokens == 77
    assert events[2].message == "boom" and events[2].code == 500 and not events[2].partial
    assert not events[2].codec_limit


def test_the_cap_refusal_is_recognised_with_its_partial_audio_flag() -> None:
    message = ("Qwen3-TTS Base did not emit codec EOS before its token budget (10/10 codec tokens); "
               "the generated audio is incomplete.")
    error = {"type": "speech.audio.error", "error": {"message": message, "type": "server_error", "param": None,
                                                     "code": 500, "partial_audio": True, "action": "discard"}}
    (event,) = sse_events(["event: speech.audio.error", f"data: {json.dumps(error)}", ""])
    assert event.partial and event.codec_limit and is_codec_limit(message)
    assert not is_codec_limit("Speech generation failed: CUDA out of memory")


def test_whole_bodies_wav_pcm_and_other_rates() -> None:
    audio = tone(0.5)
    buffer = io.BytesIO()
    sf.write(buffer, audio, 24_000, format="WAV", subtype="PCM_16")
    assert np.allclose(decode_body(buffer.getvalue(), "audio/wav"), audio, atol=1e-3)
    assert np.allclose(decode_body(pcm(audio), "audio/pcm"), audio, atol=1e-3)
    slow = io.BytesIO()
    sf.write(slow, tone(0.5, 16_000), 16_000, format="WAV", subtype="PCM_16")
    assert abs(decode_body(slow.getvalue(), "audio/wav").size - 12_000) <= 2  # resampled to 24 kHz
    # a streamed WAV: sizes unknown (0xFFFFFFFF), as the server writes its header
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, 24_000, 48_000, 2,
                         16, b"data", 0xFFFFFFFF)
    assert np.allclose(decode_body(header + pcm(audio), "audio/wav"), audio, atol=1e-3)


def test_raw_audio_stream_keeps_a_sample_split_across_chunks() -> None:
    audio = tone(0.2)
    data = pcm(audio)
    stream = PcmStream("pcm")
    pieces = [stream.feed(data[i:i + 333]) for i in range(0, len(data), 333)]
    assert np.allclose(np.concatenate(pieces), audio, atol=1e-3)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, 24_000, 48_000, 2,
                         16, b"data", 0xFFFFFFFF)
    wav_stream = PcmStream("wav")
    joined = header + data
    out = np.concatenate([wav_stream.feed(joined[i:i + 31]) for i in range(0, len(joined), 31)])
    assert np.allclose(out, audio, atol=1e-3)


def test_error_messages_in_each_documented_shape() -> None:
    openai = {"error": {"message": "Input text cannot be empty", "type": "BadRequestError", "param": None,
                        "code": 400}}
    assert error_message(json.dumps(openai).encode(), 400) == "Input text cannot be empty"
    assert error_message(b'{"success": false, "error": "Voice \'x\' not found"}', 404) == "Voice 'x' not found"
    assert error_message(b'{"detail": "The model does not support Speech API"}', 404).startswith("The model")
    assert error_message(b"", 502) == "HTTP 502"


def test_frames_are_counted_at_twelve_and_a_half_per_second() -> None:
    assert frames_of(0) == 0 and frames_of(1920) == 1 and frames_of(1921) == 2 and frames_of(24_000) == 13


def test_reference_key_follows_samples_and_transcripts(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, tone(0.4), 24_000)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    icl = [VoiceSample(path, digest, "Hello.")]
    assert reference_key(icl) == reference_key([VoiceSample(path, digest, " Hello. ")])
    assert reference_key(icl) != reference_key([VoiceSample(path, digest, "Goodbye.")])
    assert reference_key(icl) != reference_key([VoiceSample(path, "0" * 64, "Hello.")])
    ref = build_reference(icl)
    audio, rate = sf.read(io.BytesIO(ref.wav))
    assert rate == 24_000 and sf.info(io.BytesIO(ref.wav)).subtype == "PCM_16"
    assert len(audio) / rate > 1.0  # padded: the server refuses references under 1 s
    assert ref.mode == "icl" and ref.text == "Hello." and ref.name.startswith("vb-") and ref.name == ref.name.lower()
    xvector = build_reference([VoiceSample(path, digest, "")])
    assert xvector.mode == "xvector" and xvector.text == "" and xvector.name != ref.name
