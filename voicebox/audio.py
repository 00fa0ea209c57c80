"""Audio in and out: decode anything a user uploads or records, clean voice references, encode.

Why these libraries: libsndfile (``soundfile``) decodes WAV/FLAC/OGG/MP3 exactly and fast; PyAV
(FFmpeg, already a faster-whisper dependency) covers what browsers record (WebM/Opus) and M4A/AAC;
``soxr`` is a high-quality resampler; ``pyloudnorm`` measures loudness to ITU-R BS.1770. Nothing
here is hand-written DSP beyond DC removal, an energy-based silence trim and gain.

A voice reference is prepared as: mono -> 24 kHz -> DC removed -> leading/trailing silence trimmed
-> validated (length, silence, clipping) -> loudness normalised to :data:`TARGET_LUFS` with a peak
ceiling -> :data:`TRAILING_SILENCE_S` of silence appended (it stops Qwen3-TTS from echoing the
reference's last words in the clone) -> stored as 24 kHz PCM16 WAV.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import soxr

from .errors import InvalidInput, PayloadTooLarge, UnsupportedMedia

log = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 24_000
WHISPER_SAMPLE_RATE = 16_000
TARGET_LUFS = -20.0
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS
TRAILING_SILENCE_S = 0.5
EDGE_MARGIN_S = 0.05
MIN_SPEECH_S = 1.0
SILENCE_PEAK = 10 ** (-50 / 20)  # below -50 dBFS peak the clip is treated as silent
CLIP_LEVEL = 0.999
CLIP_WARN_FRACTION = 0.001
#: Bumped whenever :func:`prepare_reference` changes output, so cached voice prompts are rebuilt.
PREPROCESSING_VERSION = 1

SUPPORTED_HINT = "Upload WAV, FLAC, MP3, OGG/Opus, M4A/AAC or WebM audio."

_FORMATS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "ogg": ("OGG", "VORBIS", "audio/ogg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
}


@dataclass
class PreparedAudio:
    """A cleaned voice reference ready to store, with what the user should know about it."""

    samples: np.ndarray
    sample_rate: int
    speech_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def check_upload_size(size_bytes: int, max_bytes: int) -> None:
    """Refuse an oversized upload before anything decodes it."""
    if size_bytes > max_bytes:
        raise PayloadTooLarge(
            f"The file is {size_bytes / 1048576:.1f} MB; the limit is {max_bytes / 1048576:.0f} MB. "
            "Upload a shorter clip (a voice sample needs only 5-30 seconds)."
        )


def read_upload(data: bytes | str | Path, max_bytes: int) -> bytes:
    """The bytes of an upload (given as bytes, or as the path of a temp file), refused over
    ``max_bytes`` before they are read or decoded."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise InvalidInput("No file was uploaded.")
        check_upload_size(path.stat().st_size, max_bytes)
        return path.read_bytes()
    check_upload_size(len(data), max_bytes)
    return data


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- decoding -------------------------------------------------------------------------------
def decode(source: Path | str | bytes) -> tuple[np.ndarray, int]:
    """Decode audio to float32 ``(frames, channels)`` at its native rate.

    Raises:
        InvalidInput: the file is empty.
        UnsupportedMedia: no decoder can read it, or it has no audio stream.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if len(data) == 0:
        raise InvalidInput("The file is empty (0 bytes). " + SUPPORTED_HINT)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:  # libsndfile cannot read it: let FFmpeg try
        samples, rate = _decode_with_pyav(data)
    if samples.size == 0:
        raise InvalidInput("The file contains no audio samples. " + SUPPORTED_HINT)
    if not np.all(np.isfinite(samples)):
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    return samples, int(rate)


def _decode_with_pyav(data: bytes) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UnsupportedMedia("The file has no audio stream. " + SUPPORTED_HINT)
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono")
            chunks: list[np.ndarray] = []
            rate = stream.codec_context.sample_rate or stream.rate
            for frame in container.decode(stream):
                rate = frame.sample_rate or rate
                resampler = resampler if resampler.rate in (None, rate) else av.AudioResampler(
                    format="flt", layout="mono", rate=rate
                )
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except UnsupportedMedia:
        raise
    except Exception as exc:
        raise UnsupportedMedia(
            "Could not read this file as audio (it is not audio, or it is damaged or truncated). "
            + SUPPORTED_HINT
        ) from exc
    if not chunks or not rate:
        raise InvalidInput("The file contains no audio samples. " + SUPPORTED_HINT)
    return np.concatenate(chunks).astype(np.float32)[:, None], int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``(frames, channels)`` (a 1-D array is returned as is)."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    return samples.mean(axis=1).astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """High-quality resampling with soxr (a no-op when the rates match)."""
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32)


def load_mono(source: Path | str | bytes, rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Decode, downmix and resample: float32 mono at ``rate``."""
    samples, native = decode(source)
    return resample(to_mono(samples), native, rate)


# ---- cleaning ---------------------------------------------------------------------------------
def speech_bounds(samples: np.ndarray, rate: int, threshold_db: float = -40.0) -> tuple[int, int] | None:
    """First and last sample of the non-silent region, from 10 ms frame energies.

    The threshold is relative to the loudest frame, so quiet but clean recordings are kept.
    Returns ``None`` when the clip is silent.
    """
    hop = max(1, rate // 100)
    n_frames = len(samples) // hop
    if n_frames == 0:
        return None
    frames = samples[: n_frames * hop].reshape(n_frames, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak_rms = float(rms.max())
    if peak_rms <= 0.0 or float(np.abs(samples).max()) < SILENCE_PEAK:
        return None
    voiced = np.flatnonzero(rms >= peak_rms * 10 ** (threshold_db / 20))
    return int(voiced[0] * hop), int(min(len(samples), (voiced[-1] + 1) * hop))


def normalise_loudness(samples: np.ndarray, rate: int, target_lufs: float = TARGET_LUFS) -> np.ndarray:
    """Gain to ``target_lufs`` (BS.1770), then scale down if the peak would pass -1 dBFS."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loudness = meter.integrated_loudness(samples.astype(np.float64))
    if np.isfinite(loudness):
        samples = samples * np.float32(10 ** ((target_lufs - loudness) / 20))
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > PEAK_CEILING:
        samples = samples * np.float32(PEAK_CEILING / peak)
    return samples.astype(np.float32)


def prepare_reference(
    samples: np.ndarray, rate: int, max_seconds: float = 30.0
) -> PreparedAudio:
    """Clean and validate a voice sample (any channel count and rate).

    Raises:
        InvalidInput: silent, shorter than 1 s or longer than ``max_seconds`` after trimming.
    """
    mono = resample(to_mono(samples), rate, MODEL_SAMPLE_RATE)
    mono = mono - np.float32(mono.mean()) if mono.size else mono
    notes: list[str] = []
    clipped = float(np.mean(np.abs(to_mono(samples)) >= CLIP_LEVEL)) if samples.size else 0.0
    if clipped > CLIP_WARN_FRACTION:
        notes.append(
            f"{clipped:.1%} of the samples are clipped (distorted); the clone may sound harsh. "
            "Record again a little further from the microphone if you can."
        )
    bounds = speech_bounds(mono, MODEL_SAMPLE_RATE)
    if bounds is None:
        raise InvalidInput("The recording is silent. Check the microphone or choose another file.")
    margin = int(EDGE_MARGIN_S * MODEL_SAMPLE_RATE)
    start, end = max(0, bounds[0] - margin), min(len(mono), bounds[1] + margin)
    speech = mono[start:end]
    seconds = len(speech) / MODEL_SAMPLE_RATE
    if seconds < MIN_SPEECH_S:
        raise InvalidInput(
            f"The sample has only {seconds:.1f} s of sound; use at least {MIN_SPEECH_S:.0f} s "
            "(5-15 s of clear speech works best)."
        )
    if seconds > max_seconds:
        raise InvalidInput(
            f"The sample is {seconds:.1f} s long after trimming silence; the limit is "
            f"{max_seconds:.0f} s. Cut it to a shorter passage (5-15 s works best)."
        )
    speech = normalise_loudness(speech, MODEL_SAMPLE_RATE)
    tail = np.zeros(int(TRAILING_SILENCE_S * MODEL_SAMPLE_RATE), dtype=np.float32)
    return PreparedAudio(np.concatenate([speech, tail]), MODEL_SAMPLE_RATE, seconds, notes)


def combine_references(
    parts: Sequence[tuple[np.ndarray, str]],
    rate: int = MODEL_SAMPLE_RATE,
    gap_seconds: float = 0.3,
    max_seconds: float = 20.0,
) -> tuple[np.ndarray, str]:
    """Join a profile's samples (in the given, stable order) into one reference.

    Whole samples are taken while the total stays within ``max_seconds`` (the first is always
    taken), so every transcript still covers its audio exactly. Transcripts are joined with
    spaces; empty ones are skipped.
    """
    if not parts:
        raise InvalidInput("This profile has no samples yet. Add a recording first.")
    gap = np.zeros(int(gap_seconds * rate), dtype=np.float32)
    audio: list[np.ndarray] = []
    texts: list[str] = []
    total = 0.0
    for samples, text in parts:
        length = len(samples) / rate
        if audio and total + gap_seconds + length > max_seconds:
            continue
        if audio:
            audio.append(gap)
            total += gap_seconds
        audio.append(samples.astype(np.float32, copy=False))
        total += length
        if text and text.strip():
            texts.append(text.strip())
    return np.concatenate(audio), " ".join(texts)


# ---- encoding ---------------------------------------------------------------------------------
def encode(samples: np.ndarray, rate: int = MODEL_SAMPLE_RATE, fmt: str = "wav") -> tuple[bytes, str]:
    """Encode float audio to ``fmt`` (wav, flac, mp3, ogg, opus, pcm). Returns (bytes, MIME type).

    ``pcm`` is raw little-endian 16-bit mono, as OpenAI's speech API returns it.
    """
    fmt = fmt.lower()
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if fmt == "pcm":
        return pcm16(clipped).astype("<i2").tobytes(), "audio/pcm"
    if fmt not in _FORMATS:
        raise InvalidInput(f"Unknown audio format {fmt!r}; use one of wav, flac, mp3, ogg, opus, pcm.")
    container, subtype, mime = _FORMATS[fmt]
    out_rate = rate
    if fmt == "opus" and rate not in (8000, 12000, 16000, 24000, 48000):
        clipped, out_rate = resample(clipped, rate, 48000), 48000
    buffer = io.BytesIO()
    data = pcm16(clipped) if subtype == "PCM_16" else clipped  # 16-bit files hold exactly pcm16()
    sf.write(buffer, data, out_rate, format=container, subtype=subtype)
    return buffer.getvalue(), mime


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as 16-bit samples, ``round(x * 32767)``: one rule for every 16-bit
    file and stream voicebox writes, so that :func:`from_pcm16` of a stored file writes back
    exactly the same samples (a sentence re-take leaves the rest of a take byte-identical)."""
    return np.round(np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def from_pcm16(samples: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pcm16`."""
    return (np.asarray(samples, dtype=np.float32) / 32767.0).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = MODEL_SAMPLE_RATE) -> bytes:
    """24 kHz mono PCM16 WAV bytes: the on-disk format of samples and generations."""
    return encode(samples, rate, "wav")[0]


def crossfade_concat(pieces: Sequence[np.ndarray], rate: int = MODEL_SAMPLE_RATE, fade_s: float = 0.02) -> np.ndarray:
    """Join chunks with a short equal-power crossfade so joins do not click."""
    pieces = [p.astype(np.float32, copy=False) for p in pieces if len(p)]
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    out = pieces[0]
    for nxt in pieces[1:]:
        n = min(int(fade_s * rate), len(out), len(nxt))
        if n == 0:
            out = np.concatenate([out, nxt])
            continue
        t = np.linspace(0.0, np.pi / 2, n, dtype=np.float32)
        mixed = out[-n:] * np.cos(t) + nxt[:n] * np.sin(t)
        out = np.concatenate([out[:-n], mixed, nxt[n:]])
    return out


class CrossfadeJoiner:
    """Incremental :func:`crossfade_concat` for streaming.

    ``push`` returns the audio that is final now; the last ``fade`` samples are held back until
    the next piece (or :meth:`finish`) decides how they blend. Concatenating everything returned
    equals ``crossfade_concat`` of all pieces.
    """

    def __init__(self, rate: int = MODEL_SAMPLE_RATE, fade_s: float = 0.02) -> None:
        self.fade = int(fade_s * rate)
        self._tail = np.zeros(0, dtype=np.float32)
        self._started = False
        self._emitted: list[np.ndarray] = []

    def next_start(self, length: int, crossfade: bool = True) -> int:
        """Where a piece of ``length`` samples pushed now would start in the joined audio (a
        crossfade starts it inside the held-back tail): how a take places its sentence chunks."""
        emitted = sum(len(p) for p in self._emitted)
        n = min(self.fade, len(self._tail), length) if (crossfade and self._started) else 0
        return emitted + len(self._tail) - n

    def push(self, piece: np.ndarray, crossfade: bool = True) -> np.ndarray:
        """Add the next piece; ``crossfade=False`` joins it directly (it continues the same
        stretch of audio, e.g. more frames of one sentence chunk)."""
        piece = np.asarray(piece, dtype=np.float32)
        if not len(piece):
            return np.zeros(0, dtype=np.float32)
        n = min(self.fade, len(self._tail), len(piece)) if (crossfade and self._started) else 0
        if n:
            t = np.linspace(0.0, np.pi / 2, n, dtype=np.float32)
            mixed = self._tail[-n:] * np.cos(t) + piece[:n] * np.sin(t)
            piece = np.concatenate([self._tail[:-n], mixed, piece[n:]])
        else:
            piece = np.concatenate([self._tail, piece])
        self._started = True
        keep = min(self.fade, len(piece))
        ready, self._tail = piece[: len(piece) - keep], piece[len(piece) - keep :]
        self._emitted.append(ready)
        return ready

    def finish(self) -> np.ndarray:
        rest, self._tail = self._tail, np.zeros(0, dtype=np.float32)
        self._emitted.append(rest)
        return rest

    def whole(self) -> np.ndarray:
        """Everything emitted so far, joined (the complete take once :meth:`finish` was called)."""
        return np.concatenate(self._emitted) if self._emitted else np.zeros(0, dtype=np.float32)
