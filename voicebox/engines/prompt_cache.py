"""Voice-prompt cache: a bounded in-memory LRU in front of files on disk.

Building a voice prompt runs the speech tokenizer and the speaker encoder over the reference
audio; a cache hit skips both. Entries survive restarts on disk as two files per key:

* ``<key>.safetensors`` - the tensors (``ref_code`` when in ICL mode, ``ref_spk_embedding``);
  safetensors, never pickle, so a cache file cannot execute code when loaded.
* ``<key>.json`` - everything else (mode, reference text, model, the samples it was built from)
  plus the SHA-256 of the tensor file. The JSON is written last, so an entry is visible only once
  both files are complete, and a mismatch (crash, tampering, bit rot) reads as a miss.

A corrupt or unreadable entry is never fatal: it is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..atomic import atomic_write_bytes, remove_quietly

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass
class VoicePrompt:
    """What the model needs to clone a voice, independent of ``qwen_tts`` classes.

    ``mode`` is ``"icl"`` (reference codes + transcript: closest clone) or ``"xvector"``
    (speaker embedding only: used when no transcript is available).
    """

    mode: str
    ref_spk_embedding: torch.Tensor
    ref_code: torch.Tensor | None = None
    ref_text: str | None = None
    sample_hashes: list[str] = field(default_factory=list)
    model: str = ""
    #: A CustomVoice model's named speaker (mode ``speaker``; never cached: it is only a name).
    speaker: str = ""

    @property
    def reference_frames(self) -> int:
        return 0 if self.ref_code is None else int(self.ref_code.shape[0])


def prompt_key(
    model_id: str,
    size: str,
    dtype: str,
    mode: str,
    samples: Sequence[tuple[str, str]],
    preprocessing_version: int,
) -> str:
    """Deterministic cache key: any change to model, dtype, mode, a sample's audio or its
    transcript, or the audio preprocessing gives a new key."""
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "model": model_id,
            "size": size,
            "dtype": dtype,
            "mode": mode,
            "samples": [[sha, text] for sha, text in samples],
            "preprocessing": preprocessing_version,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class PromptCache:
    """Two-level cache of :class:`VoicePrompt` objects.

    Args:
        directory: where entries are persisted (``None``: memory only).
        capacity: how many prompts stay in memory (least recently used go first).
    """

    def __init__(self, directory: Path | str | None, capacity: int = 16) -> None:
        self.directory = Path(directory) if directory else None
        self.capacity = capacity
        self._memory: OrderedDict[str, VoicePrompt] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)

    # ---- lookups --------------------------------------------------------------------------
    def get(self, key: str, device: str | torch.device = "cpu") -> VoicePrompt | None:
        """The prompt for ``key`` from memory, else from disk (then kept in memory), else None."""
        with self._lock:
            prompt = self._memory.get(key)
            if prompt is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return prompt
            prompt = self._read_disk(key, device)
            if prompt is None:
                self.misses += 1
                return None
            self.disk_hits += 1
            self._remember(key, prompt)
            return prompt

    def put(self, key: str, prompt: VoicePrompt) -> None:
        with self._lock:
            self._remember(key, prompt)
            if self.directory:
                try:
                    self._write_disk(key, prompt)
                except OSError as exc:  # a full disk must not fail the generation
                    log.warning("could not persist voice prompt %s: %s", key[:12], exc)

    def _remember(self, key: str, prompt: VoicePrompt) -> None:
        self._memory[key] = prompt
        self._memory.move_to_end(key)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)

    # ---- disk -----------------------------------------------------------------------------
    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.directory is not None
        return self.directory / f"{key}.safetensors", self.directory / f"{key}.json"

    def _write_disk(self, key: str, prompt: VoicePrompt) -> None:
        tensors = {"ref_spk_embedding": prompt.ref_spk_embedding.detach().cpu().contiguous()}
        if prompt.ref_code is not None:
            tensors["ref_code"] = prompt.ref_code.detach().cpu().contiguous()
        blob = save_tensors(tensors)
        tensor_path, meta_path = self._paths(key)
        atomic_write_bytes(tensor_path, blob)
        meta = {
            "format": CACHE_FORMAT,
            "mode": prompt.mode,
            "ref_text": prompt.ref_text,
            "sample_hashes": prompt.sample_hashes,
            "model": prompt.model,
            "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        }
        atomic_write_bytes(meta_path, json.dumps(meta, ensure_ascii=False).encode("utf-8"))

    def _read_disk(self, key: str, device: str | torch.device) -> VoicePrompt | None:
        if not self.directory:
            return None
        tensor_path, meta_path = self._paths(key)
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            blob = tensor_path.read_bytes()
            if meta.get("format") != CACHE_FORMAT or hashlib.sha256(blob).hexdigest() != meta["tensors_sha256"]:
                raise ValueError("tensor file does not match its metadata")
            tensors = load_tensors(blob)
            code = tensors.get("ref_code")
            if (meta["mode"] == "icl") != (code is not None):
                raise ValueError("mode and tensors disagree")
            return VoicePrompt(
                mode=meta["mode"],
                ref_spk_embedding=tensors["ref_spk_embedding"].to(device),
                ref_code=None if code is None else code.to(device),
                ref_text=meta.get("ref_text"),
                sample_hashes=list(meta.get("sample_hashes", [])),
                model=meta.get("model", ""),
            )
        except Exception as exc:  # corrupt entry: drop it, rebuild later
            log.warning("ignoring corrupt voice-prompt cache entry %s: %s", key[:12], exc)
            remove_quietly(tensor_path)
            remove_quietly(meta_path)
            return None

    # ---- maintenance ----------------------------------------------------------------------
    def invalidate_samples(self, sample_hashes: Iterable[str]) -> int:
        """Drop every entry built from any of these samples (deleted or changed). Returns count."""
        doomed = set(sample_hashes)
        if not doomed:
            return 0
        dropped = 0
        with self._lock:
            for key in [k for k, p in self._memory.items() if doomed & set(p.sample_hashes)]:
                del self._memory[key]
                dropped += 1
            if self.directory:
                for meta_path in self.directory.glob("*.json"):
                    try:
                        hashes = set(json.loads(meta_path.read_text(encoding="utf-8")).get("sample_hashes", []))
                    except (OSError, ValueError):
                        hashes = doomed  # unreadable: drop it too
                    if doomed & hashes:
                        remove_quietly(meta_path.with_suffix(".safetensors"))
                        remove_quietly(meta_path)
                        dropped += 1
        return dropped

    def clear(self) -> int:
        """Empty both levels; returns how many disk entries were removed."""
        with self._lock:
            self._memory.clear()
            removed = 0
            if self.directory:
                for path in list(self.directory.glob("*.json")) + list(self.directory.glob("*.safetensors")):
                    remove_quietly(path)
                    removed += path.suffix == ".json"
            return removed

    def stats(self) -> dict[str, Any]:
        with self._lock:
            disk = list(self.directory.glob("*.json")) if self.directory else []
            size = sum(p.stat().st_size for p in self.directory.glob("*")) if self.directory else 0
            return {
                "memory_entries": len(self._memory),
                "memory_capacity": self.capacity,
                "disk_entries": len(disk),
                "disk_bytes": size,
                "hits": self.hits,
                "disk_hits": self.disk_hits,
                "misses": self.misses,
            }
