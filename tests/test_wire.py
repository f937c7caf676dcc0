"""The plain-data wire format between grader and worker: round trips and refusals."""

import json

import numpy as np
import pytest

from gmmcourse.grading import wire


def test_round_trip_of_plain_values():
    value = {
        "a": np.arange(6, dtype=np.int64).reshape(2, 3),
        "b": 1.5,
        "c": float("nan"),
        "d": [float("inf"), -float("inf"), None, True, "x"],
        "e": np.float64(2.0),
        "f": np.array([[0.25]], dtype=np.float32),
        "g": np.array([True, False]),
    }
    back = wire.decode(wire.encode(value))
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["a"].dtype == np.int64
    assert back["b"] == 1.5 and np.isnan(back["c"])
    assert back["d"][:2] == [float("inf"), -float("inf")] and back["d"][2:] == [None, True, "x"]
    assert back["f"].dtype == np.float64 and back["f"][0, 0] == 0.25
    assert back["g"].dtype == np.bool_


@pytest.mark.parametrize(
    "value",
    [object(), {1: 2}, np.array(["a"]), np.array([object()]), {"x": complex(1, 2)}, np.array([1 + 2j])],
)
def test_encode_refuses_non_plain_values(value):
    with pytest.raises(wire.WireError):
        wire.encode(value)


def test_ndarray_subclass_travels_as_plain_array():
    class Sneaky(np.ndarray):
        def __eq__(self, other):
            return True

    arr = np.arange(3.0).view(Sneaky)
    back = wire.decode(wire.encode({"x": arr}))["x"]
    assert type(back) is np.ndarray
    assert not np.array_equal(back, np.zeros(3))


@pytest.mark.parametrize(
    "payload",
    [
        {"__ndarray__": "AAAA", "dtype": "|O", "shape": [1]},  # object dtype
        {"__ndarray__": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [2]},  # wrong byte count
        {"__ndarray__": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [-1]},  # negative dimension
        {"__ndarray__": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [1], "x": 1},  # extra key
        {"__float__": "1e400"},
        {"__float__": "nan", "x": 1},
        {"__ndarray__": "!!!!", "dtype": "<f8", "shape": [1]},  # not base64
    ],
)
def test_decode_refuses_malformed_payloads(payload):
    with pytest.raises(wire.WireError):
        wire.decode(json.dumps(payload))


def test_decode_refuses_deep_nesting_and_bad_json():
    with pytest.raises(wire.WireError):
        wire.decode("[" * 50 + "]" * 50)
    with pytest.raises(wire.WireError):
        wire.decode("{not json")
    with pytest.raises(wire.WireError):
        wire.decode('{"x": NaN}'.replace("NaN", "nan"))
