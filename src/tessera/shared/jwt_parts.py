"""Reading the parts of a compact JWT before (or beside) verifying it: RFC 7515 §7.1 (base64url
segments), RFC 7519 §2 (NumericDate). Shared by the resource library and the identity domain."""

from __future__ import annotations

import base64
import math
from typing import Any, TypeGuard

import orjson

__all__ = ["decode_segment", "is_numeric_date"]


def decode_segment(segment: str) -> Any:
    """The JSON value of one base64url segment (without padding); `ValueError` when it is not
    base64url or not JSON (`orjson.JSONDecodeError` is a `ValueError`)."""
    padded = segment + "=" * (-len(segment) % 4)
    return orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def is_numeric_date(value: Any) -> TypeGuard[int | float]:
    """A finite JSON number (NumericDate); never a bool, NaN or infinity."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
