"""What a model file is, by its first bytes, and the small decoders both readers share: the one source for
weights.py (safetensors) and checkpoint.py (torch.save archives), which import it (it imports neither)."""
from __future__ import annotations

import numpy as np

ZIP_MAGIC = b"PK\x03\x04"
# torch.save before 1.6: pickle protocol 2 of the long 0x1950a86a20f9469cfc6c, then more pickles
LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def sniff(head: bytes) -> str | None:
    """A file's first bytes (512 are enough) -> "zip" (a torch.save archive), "legacy" (a pre-1.6 torch.save:
    its magic pickle, or a tar), "pickle" (another bare pickle), "safetensors" (a header length, then a JSON
    object), or None."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(LEGACY_MAGIC) or head[257:262] == b"ustar":
        return "legacy"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) > 8 and head[8:9] == b"{":
        return "safetensors"
    return None


def is_index(v) -> bool:
    """A non-negative Python int: not a bool, not a float."""
    return type(v) is int and v >= 0


def bf16_to_f32(raw, order: str = "<", count: int = -1) -> np.ndarray:
    """bfloat16 bytes (byte order `order`) -> float32, exactly: a bfloat16 is the top half of a float32."""
    halves = np.frombuffer(raw, dtype=order + "u2", count=count).astype(np.uint32)
    return (halves << 16).view(np.float32)
