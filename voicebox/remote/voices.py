"""The remote analogue of the voice-prompt cache: a profile's reference, registered once per server.

A local engine turns a profile's samples into a voice prompt once and keeps it
(:mod:`voicebox.engines.prompt_cache`). Against vLLM-Omni the same saving is its voice registry
(``POST /v1/audio/voices``): the reference is uploaded once, the server caches what it extracts
from it, and every request names it (``voice``) instead of carrying a base64 WAV.

* A :class:`Reference` is the profile's samples joined as the local engines join them
  (:func:`voicebox.audio.combine_references`, at most 20 s, within the server's 1-30 s), as
  16-bit WAV, with the joined transcript when every sample has one (in-context cloning) or none
  (speaker embedding only). Its key hashes the sample hashes and transcripts, and its name on a
  server derives from the key: changed samples give a new key, hence a new registration, and a name
  already on a server (voicebox restarted, the server kept its voices) is reused without an upload.
* A server without the registry (404/405, or 409 when it runs several API processes, whose
  registry is per process) gets the reference inline with each request, as does one that refused
  this reference (400).
* :meth:`VoiceRegistry.forget` / :meth:`VoiceRegistry.clear` delete voicebox's registrations
  (``DELETE /v1/audio/voices/{name}``; only ``vb-`` names voicebox made).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from ..audio import MODEL_SAMPLE_RATE, PREPROCESSING_VERSION, combine_references, load_mono
from ..speech import VoiceSample
from .protocol import VoiceRef, error_message
from .router import Router, Server, describe

#: Registered names start with this, so voicebox deletes only what it made.
PREFIX = "vb-"
#: The server refuses references shorter than 1 s; shorter ones are padded with silence.
MIN_SECONDS = 1.0
#: References kept in memory (each a WAV of at most 20 s: ~1 MB).
MAX_REFERENCES = 64
#: Sent as the registry's required ``consent`` field.
CONSENT = "voicebox-profile"


@dataclass(frozen=True)
class Reference:
    """A profile's samples as one reference: WAV bytes, transcript, and the key they hash to."""

    key: str
    wav: bytes
    text: str
    sample_hashes: tuple[str, ...]
    seconds: float

    @property
    def mode(self) -> str:
        """``icl`` (audio and transcript) or ``xvector`` (speaker embedding only)."""
        return "icl" if self.text else "xvector"

    @property
    def name(self) -> str:
        return PREFIX + self.key[:24]

    def inline(self) -> VoiceRef:
        return VoiceRef(wav=self.wav, text=self.text)


def reference_key(samples: Sequence[VoiceSample]) -> str:
    """What a reference depends on: each sample's hash and (in ICL mode) transcript, in order."""
    icl = all(s.text.strip() for s in samples)
    parts = [f"v{PREPROCESSING_VERSION}", "icl" if icl else "xvector"]
    parts += [f"{s.sha256}:{s.text.strip() if icl else ''}" for s in samples]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_reference(samples: Sequence[VoiceSample]) -> Reference:
    """Join the samples into one 24 kHz 16-bit WAV (see the module docstring)."""
    import soundfile as sf

    icl = all(s.text.strip() for s in samples)
    audio, text = combine_references([(load_mono(s.path, MODEL_SAMPLE_RATE), s.text) for s in samples])
    audio = np.asarray(audio, dtype=np.float32)
    shortest = int(MIN_SECONDS * MODEL_SAMPLE_RATE) + 1
    if audio.size < shortest:
        audio = np.pad(audio, (0, shortest - audio.size))
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), MODEL_SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return Reference(reference_key(samples), buffer.getvalue(), text if icl else "",
                     tuple(s.sha256 for s in samples), round(audio.size / MODEL_SAMPLE_RATE, 3))


class VoiceRegistry:
    """References in memory, and which server has which registered."""

    def __init__(self, router: Router, builder: Callable[[Sequence[VoiceSample]], Reference] = build_reference) -> None:
        self.router = router
        self._build = builder
        self._refs: OrderedDict[str, Reference] = OrderedDict()
        #: server index -> names registered there
        self._names: dict[int, set[str]] = {}
        #: (server index, name) a server refused: sent inline there from then on
        self._refused: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._uploading: dict[tuple[int, str], threading.Lock] = {}
        self.uploads = 0
        self.builds = 0

    # ---- references ---------------------------------------------------------------------------
    def reference(self, samples: Sequence[VoiceSample]) -> tuple[Reference, bool]:
        """The reference for these samples, built once; (reference, was it in memory)."""
        key = reference_key(samples)
        with self._lock:
            found = self._refs.get(key)
            if found is not None:
                self._refs.move_to_end(key)
                return found, True
        built = self._build(samples)
        with self._lock:
            self.builds += 1
            self._refs[key] = built
            while len(self._refs) > MAX_REFERENCES:
                self._refs.popitem(last=False)
        return built, False

    # ---- registration -------------------------------------------------------------------------
    def voice_for(self, server: Server, ref: Reference) -> VoiceRef:
        """How ``ref`` travels to ``server``: its registered name (registered now if need be), or
        inline where the server has no registry or refused it.

        Raises:
            httpx.HTTPError: the server failed while registering (the caller takes it out).
        """
        if server.registry is False or (server.index, ref.name) in self._refused:
            return ref.inline()
        if ref.name in self._names.get(server.index, set()):
            return VoiceRef(name=ref.name)
        with self._lock:
            gate = self._uploading.setdefault((server.index, ref.name), threading.Lock())
        with gate:  # two chunks of one take on one server: one upload
            if ref.name in self._names.get(server.index, set()):
                return VoiceRef(name=ref.name)
            if self._listed(server, ref.name) or self._upload(server, ref):
                with self._lock:
                    self._names.setdefault(server.index, set()).add(ref.name)
                return VoiceRef(name=ref.name)
        return ref.inline()

    def _listed(self, server: Server, name: str) -> bool:
        """Whether the server already has ``name`` (read once per server; names are content)."""
        if server.index in self._names:
            return False
        answer = self.router.client.get(server.url + "/v1/audio/voices", headers=self.router.headers)
        if answer.status_code >= 500:
            raise httpx.HTTPStatusError(f"HTTP {answer.status_code}", request=answer.request, response=answer)
        names: set[str] = set()
        if answer.status_code == 200:
            body = answer.json()
            names = {str(v.get("name", "")).lower() for v in body.get("uploaded_voices") or [] if isinstance(v, dict)}
        elif answer.status_code in (404, 405):
            server.registry = False
        with self._lock:
            self._names[server.index] = {n for n in names if n.startswith(PREFIX)}
        return name in names

    def _upload(self, server: Server, ref: Reference) -> bool:
        if server.registry is False:
            return False
        form = {"name": ref.name, "consent": CONSENT}
        if ref.text:
            form["ref_text"] = ref.text
        answer = self.router.client.post(server.url + "/v1/audio/voices", headers=self.router.headers, data=form,
                                         files={"audio_sample": ("reference.wav", ref.wav, "audio/wav")})
        if answer.status_code == 200:
            server.registry = True
            self.uploads += 1
            return True
        if answer.status_code in (404, 405, 409, 501):  # no registry, or one per API process
            server.registry = False
        elif answer.status_code >= 500:
            raise httpx.HTTPStatusError(error_message(answer.content, answer.status_code),
                                        request=answer.request, response=answer)
        else:
            with self._lock:
                self._refused.add((server.index, ref.name))
        return False

    def lost(self, server: Server, name: str) -> None:
        """The server no longer knows ``name`` (it restarted without its voices): register again."""
        with self._lock:
            self._names.get(server.index, set()).discard(name)

    def prepare(self, ref: Reference, servers: Iterable[Server]) -> bool:
        """Register ``ref`` on each of ``servers`` now; True when every one had it already."""
        had = True
        for server in servers:
            before = ref.name in self._names.get(server.index, set())
            try:
                self.voice_for(server, ref)
            except httpx.HTTPError as exc:
                self.router.fail(server, describe(exc))
            had = had and before
        return had

    # ---- forgetting ---------------------------------------------------------------------------
    def forget(self, sample_hashes: Iterable[str]) -> int:
        """Drop references built from any of these samples, and their registrations."""
        gone = set(sample_hashes)
        with self._lock:
            stale = [ref for ref in self._refs.values() if gone.intersection(ref.sample_hashes)]
            for ref in stale:
                del self._refs[ref.key]
        for ref in stale:
            self._unregister({ref.name})
        return len(stale)

    def clear(self) -> None:
        """Drop every reference and every registration voicebox made."""
        with self._lock:
            self._refs.clear()
            names = {n for registered in self._names.values() for n in registered}
        self._unregister(names)

    def _unregister(self, names: set[str]) -> None:
        for server in self.router.servers:
            with self._lock:
                mine = self._names.get(server.index, set()) & names
            for name in mine:
                try:  # best effort: a server that is down forgets nothing, but the name is content
                    self.router.client.delete(f"{server.url}/v1/audio/voices/{name}", headers=self.router.headers)
                except httpx.HTTPError:
                    pass
                with self._lock:
                    self._names.get(server.index, set()).discard(name)
                    self._refused.discard((server.index, name))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "memory_entries": len(self._refs),
                "disk_entries": 0,
                "disk_bytes": 0,
                "memory_bytes": sum(len(r.wav) for r in self._refs.values()),
                "registered": {s.url: len(self._names.get(s.index, set())) for s in self.router.servers},
                "uploads": self.uploads,
            }
