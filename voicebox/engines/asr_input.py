"""What :meth:`WhisperEngine.transcribe` accepts, turned into samples and a cache identity.

A caller may pass float samples (any dtype, mono or multi-channel), the bytes of an upload, or a
path. This module validates each kind with a message the user can act on and works out the
clip's identity (SHA-256) *without decoding*, so a cached transcript costs a hash, not a decode.
Decoding, when it is needed, goes through :func:`voicebox.audio.load_mono`, voicebox's one audio
decoder, at Whisper's 16 kHz.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from voicebox import audio as audio_io
from voicebox.audio import WHISPER_SAMPLE_RATE
from voicebox.engines.transcripts import audio_sha256
from voicebox.errors import InvalidInput, NotFound, UnsupportedMedia

logger = logging.getLogger(__name__)

#: Shown whenever a file cannot be decoded; lists what the upload form accepts.
UNREADABLE_AUDIO_MESSAGE = (
    "Could not read this file as audio. Upload WAV, FLAC, MP3, OGG, M4A or WebM."
)

AudioInput = Union[np.ndarray, str, "os.PathLike[str]", bytes, bytearray, memoryview]


@dataclass
class Clip:
    """A validated input: samples (arrays) or something to decode (uploads, files), its cache
    identity, and the name messages use for it."""

    samples: np.ndarray | None
    source: str | bytes | None
    label: str
    sha256: str

    def load(self) -> np.ndarray:
        """The samples, decoding the file or upload on first use (16 kHz mono float32)."""
        if self.samples is None:
            assert self.source is not None
            self.samples = load_samples(self.source, self.label)
        return self.samples


def coerce_samples(audio: np.ndarray) -> np.ndarray:
    """Validate an in-memory clip and return it as contiguous mono float32.

    Integer PCM is scaled to [-1, 1]. A 2-D array is taken as multi-channel (``(frames,
    channels)`` as soundfile returns it, or ``(channels, frames)`` as torch does) and averaged to
    mono, since that is what the caller almost always meant.

    Raises:
        InvalidInput: for empty, non-numeric, non-finite or oddly shaped arrays.
    """
    array = np.asarray(audio)
    if array.dtype.kind not in "fiu":
        raise InvalidInput("The audio must be numeric samples (a float32 array at 16 kHz).")
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        if array.dtype.kind == "i":
            offset, scale = 0.0, float(-info.min)
        else:  # unsigned PCM (e.g. 8-bit WAV) is centred on half its range
            offset = scale = (info.max + 1) / 2.0
        array = (array.astype(np.float64) - offset) / scale
    if array.ndim == 2:
        if array.shape[1] <= 8 and array.shape[0] > array.shape[1]:
            array = array.mean(axis=1)
        elif array.shape[0] <= 8:
            array = array.mean(axis=0)
    if array.ndim != 1:
        raise InvalidInput(
            f"The audio must be a mono clip (a 1-D array); got an array of shape {array.shape}."
        )
    if array.size == 0:
        raise InvalidInput("The audio is empty.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InvalidInput("The audio contains invalid samples (NaN or infinity).")
    return array


def load_samples(source: str | bytes, label: str) -> np.ndarray:
    """Decode a file or an upload to 16 kHz mono float32 with :func:`voicebox.audio.load_mono`.

    Raises:
        UnsupportedMedia: when the bytes are not audio (:data:`UNREADABLE_AUDIO_MESSAGE`).
        InvalidInput: when the file decodes but holds no samples, or cannot be read.
        NotFound: when the file disappeared since it was identified.
    """
    try:
        samples = audio_io.load_mono(source, rate=WHISPER_SAMPLE_RATE)
    except UnsupportedMedia as exc:
        logger.info("could not decode %s: %s", label, exc)
        raise UnsupportedMedia(UNREADABLE_AUDIO_MESSAGE) from None
    except FileNotFoundError:
        raise NotFound(f"Audio file not found: {label}") from None
    except OSError as exc:
        raise InvalidInput(f"Could not read '{label}' ({exc.strerror or exc}).") from None
    return np.ascontiguousarray(samples, dtype=np.float32)


def identify(audio: AudioInput, sha256: str | None = None) -> Clip:
    """Validate the input and work out its cache identity, without decoding files.

    Args:
        audio: samples at 16 kHz, the bytes of an upload, or a path to an audio file.
        sha256: the identity when the caller already has one; default: the hash of the file's
            bytes for paths/bytes, or of the float32 samples for arrays.

    Raises:
        InvalidInput: a bad array, an empty or unreadable file, a directory, an unsupported type.
        NotFound: the path does not exist.
    """
    given = sha256.strip().lower() if isinstance(sha256, str) and sha256.strip() else None
    if isinstance(audio, np.ndarray):
        samples = coerce_samples(audio)
        return Clip(samples, None, "audio", given or audio_sha256(samples))
    if isinstance(audio, (bytes, bytearray, memoryview)):
        data = bytes(audio)
        if not data:
            raise InvalidInput("The uploaded file is empty (0 bytes).")
        return Clip(None, data, "upload", given or hashlib.sha256(data).hexdigest())
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        if not path.exists():
            raise NotFound(f"Audio file not found: {path.name}")
        if not path.is_file():
            raise InvalidInput(f"'{path.name}' is not a file.")
        if path.stat().st_size == 0:
            raise InvalidInput(f"The file '{path.name}' is empty (0 bytes).")
        if given is None:
            try:
                given = audio_io.sha256_file(path)
            except OSError as exc:
                raise InvalidInput(f"Could not read '{path.name}' ({exc.strerror or exc}).") from None
        return Clip(None, str(path), path.name, given)
    raise InvalidInput(
        f"Cannot transcribe a {type(audio).__name__}: pass a file path or a float32 array at 16 kHz."
    )
