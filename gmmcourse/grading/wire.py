"""Plain-data encoding between the trusted grader and the sandboxed worker.

Values are JSON: null, booleans, integers, finite floats, strings, lists, string-keyed dicts, and
two tagged objects: ``{"__float__": "nan" | "inf" | "-inf"}`` and
``{"__ndarray__": <base64>, "dtype": "<f8", "shape": [...]}``. Nothing here can run code, and
:func:`decode` checks every array's dtype (from a short allow-list), shape and byte count.

This module is also copied verbatim into the worker's sandbox, so it imports only the standard
library and numpy.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

ALLOWED_DTYPES = ("<f8", "<f4", "<i8", "<i4", "|u1", "|b1", "<u8", "<u4", "|i1", "<i2", "<u2")
MAX_DEPTH = 8
MAX_ELEMENTS = 50_000_000
MAX_ITEMS = 1_000_000  # JSON values per payload: arrays travel as one string, lists stay short


class WireError(ValueError):
    """The payload is not plain data of the allowed kinds."""


def _enc(value, depth):
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        arr = np.array(value, copy=True, order="C")  # keeps 0-d arrays 0-d
        if arr.dtype.kind == "b":
            arr = arr.astype("|b1")
        elif arr.dtype.kind in "iu":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        elif arr.dtype.kind == "f":
            arr = arr.astype("<f8")
        else:
            raise WireError(f"array of dtype {arr.dtype} cannot be sent")
        if arr.dtype.str not in ALLOWED_DTYPES:
            raise WireError(f"array of dtype {arr.dtype} cannot be sent")
        return {
            "__ndarray__": base64.b64encode(arr.tobytes()).decode("ascii"),
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
        }
    if isinstance(value, (list, tuple)):
        return [_enc(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise WireError("dict keys must be strings")
            out[k] = _enc(v, depth + 1)
        return out
    raise WireError(f"values of type {type(value).__name__} cannot be sent")


def encode(value) -> str:
    """One JSON line for ``value`` (plain data only; raises WireError otherwise)."""
    return json.dumps(_enc(value, 0), allow_nan=False, separators=(",", ":"))


def _dec(obj, depth):
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if obj is None or type(obj) in (bool, str, int):
        return obj
    if type(obj) is float:
        return obj
    if type(obj) is list:
        return [_dec(v, depth + 1) for v in obj]
    if type(obj) is dict:
        if "__float__" in obj:
            tag = obj["__float__"]
            if len(obj) != 1 or tag not in ("nan", "inf", "-inf"):
                raise WireError("malformed float tag")
            return float(tag)
        if "__ndarray__" in obj:
            if set(obj) != {"__ndarray__", "dtype", "shape"}:
                raise WireError("malformed array tag")
            dtype, shape, data = obj["dtype"], obj["shape"], obj["__ndarray__"]
            if dtype not in ALLOWED_DTYPES:
                raise WireError(f"array dtype {str(dtype)[:20]!r} is not allowed")
            if type(shape) is not list or len(shape) > 8 or not all(type(n) is int and 0 <= n for n in shape):
                raise WireError("malformed array shape")
            count = math.prod(shape)
            if count > MAX_ELEMENTS:
                raise WireError("array too large")
            if type(data) is not str:
                raise WireError("malformed array data")
            try:
                raw = base64.b64decode(data.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError):
                raise WireError("array data is not base64") from None
            dt = np.dtype(dtype)
            if len(raw) != count * dt.itemsize:
                raise WireError("array data does not match its shape")
            return np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        return {str(k): _dec(v, depth + 1) for k, v in obj.items()}
    raise WireError("unexpected JSON value")


def decode(line: str | bytes):
    """Inverse of :func:`encode`; raises WireError on anything but plain data."""
    if (line.count(b",") if isinstance(line, (bytes, bytearray)) else line.count(",")) > MAX_ITEMS:
        raise WireError("too many values")  # before parsing: millions of small objects exhaust memory
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not valid JSON: {str(exc)[:80]}") from None
    return _dec(obj, 0)
