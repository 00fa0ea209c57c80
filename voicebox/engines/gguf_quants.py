"""Weight quantisation for GGUF files, in numpy: the block formats GGML's CPU kernels read.

``gguf`` (the llama.cpp project's Python package, pinned in requirements.txt) quantises ``Q8_0``
and ``BF16`` bit-exactly like ggml, but only *de*quantises the K-quants. ``Q4_K_M`` needs ``Q4_K``
and ``Q6_K`` blocks, so they are written here, vectorised over all blocks of a tensor:

* ``Q4_K`` - 256 weights per 144-byte block: an fp16 ``d`` and ``dmin``, 12 bytes holding eight
  6-bit (scale, min) pairs, one per 32 weights, and 128 bytes of 4-bit codes;
  ``w = d * scale * q - dmin * min``.
* ``Q6_K`` - 256 weights per 210-byte block: 128 bytes of low nibbles, 64 bytes of high 2-bit
  pairs, sixteen int8 scales (one per 16 weights) and an fp16 ``d``; ``w = d * scale * (q - 32)``.

The scales are found in one pass (range per sub-block, then the scales themselves quantised and
the codes re-fitted to the quantised scales), not with llama.cpp's iterative search: slightly
more rounding error, the same format. Tests check every format against ``gguf``'s own
dequantiser.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import quants

QK_K = 256

#: Types this module writes, with (weights per block, bytes per block).
BLOCK = {
    QT.F32: (1, 4), QT.F16: (1, 2), QT.BF16: (1, 2), QT.Q8_0: (32, 34), QT.Q4_K: (256, 144), QT.Q6_K: (256, 210),
}


def fits(qtype: QT, row: int) -> bool:
    """Whether rows of ``row`` weights split into whole blocks of ``qtype``."""
    return row % BLOCK[qtype][0] == 0


def quantize(weights: np.ndarray, qtype: QT) -> np.ndarray:
    """``weights`` (float, last axis a multiple of the block size) as ``qtype``: float32 / float16
    arrays for the float types, else uint8 rows of blocks (last axis: bytes per row)."""
    data = np.ascontiguousarray(weights, dtype=np.float32)
    if qtype == QT.F32:
        return data
    if qtype == QT.F16:
        return data.astype(np.float16)
    if not fits(qtype, data.shape[-1]):
        raise ValueError(f"rows of {data.shape[-1]} weights do not split into {qtype.name} blocks")
    if qtype in (QT.BF16, QT.Q8_0):
        return quants.quantize(data, qtype)
    rows = data.reshape(-1, QK_K)
    blocks = _q4_k(rows) if qtype == QT.Q4_K else _q6_k(rows) if qtype == QT.Q6_K else None
    if blocks is None:
        raise ValueError(f"quantisation to {qtype.name} is not supported")
    return blocks.reshape(*data.shape[:-1], data.shape[-1] // QK_K * BLOCK[qtype][1])


def _fp16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).reshape(-1, 1).view(np.uint8)


def _q4_k(x: np.ndarray) -> np.ndarray:
    """(n, 256) float32 -> (n, 144) uint8 Q4_K blocks."""
    n = x.shape[0]
    sub = x.reshape(n, 8, 32)
    low = np.minimum(sub.min(axis=2), 0.0)  # the offset is a non-negative "min" subtracted later
    high = sub.max(axis=2)
    scale = (high - low) / 15.0
    offset = -low
    d = (scale.max(axis=1) / 63.0).astype(np.float16).astype(np.float32)
    dmin = (offset.max(axis=1) / 63.0).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dmin[:, None] > 0, np.rint(offset / dmin[:, None]), 0).clip(0, 63).astype(np.uint8)
        step = (d[:, None] * sc)[:, :, None]
        q = np.where(step > 0, np.rint((sub + (dmin[:, None] * mn)[:, :, None]) / step), 0)
    q = q.clip(0, 15).astype(np.uint8)
    # 12 bytes of 6-bit pairs: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scale) and 4-7 (min);
    # sub-blocks 4-7 in bytes 8-11 (scale low nibble, min high nibble) plus the top 2 bits of each
    # in the high bits of bytes 0-3 (scale) and 4-7 (min).
    packed = np.zeros((n, 12), dtype=np.uint8)
    packed[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = (mn[:, 0:4] & 63) | ((mn[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:8] & 15) | ((mn[:, 4:8] & 15) << 4)
    # codes: each 32-byte group holds sub-block 2j in the low nibbles and 2j+1 in the high ones
    pairs = q.reshape(n, 4, 2, 32)
    codes = (pairs[:, :, 0, :] | (pairs[:, :, 1, :] << 4)).reshape(n, 128)
    return np.concatenate([_fp16_bytes(d), _fp16_bytes(dmin), packed, codes], axis=1)


def _q6_k(x: np.ndarray) -> np.ndarray:
    """(n, 256) float32 -> (n, 210) uint8 Q6_K blocks."""
    n = x.shape[0]
    sub = x.reshape(n, 16, 16)
    scale = np.abs(sub).max(axis=2) / 31.0
    d = (scale.max(axis=1) / 127.0).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(0, 127).astype(np.int8)
        step = (d[:, None] * sc.astype(np.float32))[:, :, None]
        q = np.where(step > 0, np.rint(sub / step), 0)
    q = (q.clip(-32, 31) + 32).astype(np.uint8).reshape(n, 2, 4, 32)  # halves of 128, four rows of 32
    low = q & 15
    high = q >> 4
    ql = np.concatenate([low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)], axis=2)
    qh = high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)
    return np.concatenate(
        [ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8), _fp16_bytes(d)], axis=1
    )


def dequantize(data: np.ndarray, qtype: QT) -> np.ndarray:
    """Back to float32 (``gguf``'s reference dequantiser), for checks."""
    if qtype in (QT.F32, QT.F16):
        return np.asarray(data, dtype=np.float32)
    return quants.dequantize(data, qtype)
