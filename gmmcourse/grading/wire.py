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


def _enc_float(value: float | np.floating) -> float | dict:
    """Encode one float: itself when finite, else a ``__float__`` tag.

    Parameters
    ----------
    value : float or numpy floating
        The number to send.

    Returns
    -------
    float or dict
        The float, or ``{"__float__": "nan" | "inf" | "-inf"}``.
    """
    value = float(value)
    if math.isfinite(value):
        return value
    return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _enc_array(value: np.ndarray) -> dict:
    """Encode one array as an ``__ndarray__`` tag (little-endian; floats as ``<f8``).

    Parameters
    ----------
    value : ndarray
        A boolean, integer or floating array of any shape (0-d included); subclasses travel as
        plain arrays.

    Returns
    -------
    dict
        ``{"__ndarray__": <base64 of the bytes>, "dtype": <dtype string>, "shape": [...]}``.

    Raises
    ------
    WireError
        The dtype is not one of ``ALLOWED_DTYPES`` once converted.
    """
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


def _enc_dict(value: dict, depth: int) -> dict:
    """Encode a dict with string keys, each value one level deeper.

    Parameters
    ----------
    value : dict
        The dict to send.
    depth : int
        Nesting depth of ``value`` itself.

    Returns
    -------
    dict
        The same keys, with encoded values.

    Raises
    ------
    WireError
        A key is not a string, or a value cannot be sent.
    """
    out = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise WireError("dict keys must be strings")
        out[k] = _enc(v, depth + 1)
    return out


def _enc(value, depth: int):
    """Encode ``value`` as JSON-ready plain data.

    Parameters
    ----------
    value : object
        None, bool, int, float, str, a numpy scalar or array, or lists, tuples and string-keyed
        dicts of them.
    depth : int
        Nesting depth of ``value`` (0 at the top); beyond ``MAX_DEPTH`` it is refused.

    Returns
    -------
    object
        What :func:`json.dumps` can write without NaN or infinities.

    Raises
    ------
    WireError
        ``value`` is not plain data or is nested too deeply.
    """
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _enc_float(value)
    if isinstance(value, np.ndarray):
        return _enc_array(value)
    if isinstance(value, (list, tuple)):
        return [_enc(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return _enc_dict(value, depth)
    raise WireError(f"values of type {type(value).__name__} cannot be sent")


def encode(value) -> str:
    """Encode ``value`` as one line of JSON.

    Parameters
    ----------
    value : object
        Plain data: None, bool, int, float (NaN and infinities included), str, numpy scalars and
        arrays of the allowed dtypes, and lists, tuples and string-keyed dicts of them, nested at
        most ``MAX_DEPTH`` deep.

    Returns
    -------
    str
        Compact JSON without newlines.

    Raises
    ------
    WireError
        ``value`` holds anything else.
    """
    return json.dumps(_enc(value, 0), allow_nan=False, separators=(",", ":"))


def _dec_float(obj: dict) -> float:
    """Decode a ``__float__`` tag.

    Parameters
    ----------
    obj : dict
        A JSON object with the key ``"__float__"``.

    Returns
    -------
    float
        NaN, inf or -inf.

    Raises
    ------
    WireError
        The object has other keys or an unknown tag.
    """
    tag = obj["__float__"]
    if len(obj) != 1 or tag not in ("nan", "inf", "-inf"):
        raise WireError("malformed float tag")
    return float(tag)


def _array_size(dtype, shape) -> int:
    """Check an array tag's dtype and shape; return its number of elements.

    Parameters
    ----------
    dtype : object
        The tag's ``"dtype"`` value; must be one of ``ALLOWED_DTYPES``.
    shape : object
        The tag's ``"shape"`` value; must be a list of at most 8 non-negative integers.

    Returns
    -------
    int
        The product of ``shape``, at most ``MAX_ELEMENTS``.

    Raises
    ------
    WireError
        The dtype is not allowed, the shape is malformed or the array is too large.
    """
    if dtype not in ALLOWED_DTYPES:
        raise WireError(f"array dtype {str(dtype)[:20]!r} is not allowed")
    if type(shape) is not list or len(shape) > 8 or not all(type(n) is int and 0 <= n for n in shape):
        raise WireError("malformed array shape")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise WireError("array too large")
    return count


def _dec_array(obj: dict) -> np.ndarray:
    """Decode an ``__ndarray__`` tag into a fresh array (dtype, shape and byte count checked).

    Parameters
    ----------
    obj : dict
        A JSON object with the key ``"__ndarray__"``.

    Returns
    -------
    ndarray
        A writable array of the tag's dtype and shape, owning its data.

    Raises
    ------
    WireError
        Keys, dtype, shape or data are malformed, or the data does not fill the shape exactly.
    """
    if set(obj) != {"__ndarray__", "dtype", "shape"}:
        raise WireError("malformed array tag")
    dtype, shape, data = obj["dtype"], obj["shape"], obj["__ndarray__"]
    count = _array_size(dtype, shape)
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


def _dec(obj, depth: int):
    """Decode parsed JSON back into plain values and arrays.

    Parameters
    ----------
    obj : object
        What :func:`json.loads` returned for a payload, or a part of it.
    depth : int
        Nesting depth of ``obj`` (0 at the top); beyond ``MAX_DEPTH`` it is refused.

    Returns
    -------
    object
        None, bool, int, float, str, ndarray, or lists and string-keyed dicts of them.

    Raises
    ------
    WireError
        A tag is malformed, or ``obj`` is nested too deeply or not JSON data.
    """
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if obj is None or type(obj) in (bool, str, int, float):
        return obj
    if type(obj) is list:
        return [_dec(v, depth + 1) for v in obj]
    if type(obj) is not dict:
        raise WireError("unexpected JSON value")
    if "__float__" in obj:
        return _dec_float(obj)
    if "__ndarray__" in obj:
        return _dec_array(obj)
    return {str(k): _dec(v, depth + 1) for k, v in obj.items()}


def decode(line: str | bytes):
    """Decode one line written by :func:`encode`.

    Parameters
    ----------
    line : str or bytes
        The JSON text.

    Returns
    -------
    object
        The plain data it holds; tuples come back as lists, arrays as fresh ndarrays.

    Raises
    ------
    WireError
        The text is not valid JSON, holds too many values, is nested too deeply, or holds a
        malformed tag.
    """
    if (line.count(b",") if isinstance(line, (bytes, bytearray)) else line.count(",")) > MAX_ITEMS:
        raise WireError("too many values")  # before parsing: millions of small objects exhaust memory
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not valid JSON: {str(exc)[:80]}") from None
    return _dec(obj, 0)
