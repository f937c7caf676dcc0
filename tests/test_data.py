"""Tests for gmmcourse.data: idx reading, checked MNIST/FashionMNIST loading, the tops build."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmmcourse import data
from gmmcourse.errors import UserError
from gmmcourse.paths import DATA_DIR

PUBLISHED_MD5 = {"valid": "4b7d7c134de2c744257a50dce7b13a6d", "test": "d032dd658652490f3f94961d721f0b5a"}
IDX_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """Serialise ``array`` as an idx file with type ``code`` (big-endian payload)."""
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(data.IDX_DTYPES[code]).tobytes()


def raises_user_error(path: Path, func, *args, match: str = "", **kwargs) -> str:
    """Assert ``func(*args, **kwargs)`` raises a one-line UserError naming ``path``; return its message."""
    with pytest.raises(UserError, match=match) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, array",
    [
        (0x08, np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)),
        (0x09, np.array([-128, -1, 0, 127], dtype=np.int8)),
        (0x0B, np.array([[-30000, 5], [7, 30000]], dtype=np.int16)),
        (0x0C, np.array([-(2**31), 2**31 - 1], dtype=np.int32)),
        (0x0D, np.array([[0.5, -1.25, 3e30]], dtype=np.float32)),
        (0x0E, np.array([np.pi, -np.e], dtype=np.float64)),
    ],
)
@pytest.mark.parametrize("compressed", [True, False])
def test_read_idx_round_trip(tmp_path, code, array, compressed):
    payload = idx_bytes(array, code)
    path = tmp_path / ("x.idx.gz" if compressed else "x.idx")
    path.write_bytes(gzip.compress(payload) if compressed else payload)
    out = data.read_idx(path)
    assert out.shape == array.shape
    assert out.dtype == array.dtype  # native byte order
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # the result is an ordinary writable array


@pytest.fixture
def good_idx() -> bytes:
    return idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08)


@pytest.mark.parametrize(
    "name, mangle, match",
    [
        ("truncated", lambda b: b[:-1], "truncated idx file"),
        ("trailing", lambda b: b + b"junk", "4 unexpected trailing bytes"),
        ("bad-magic", lambda b: b"\x01" + b[1:], "bad magic"),
        ("dtype", lambda b: b[:2] + b"\x07" + b[3:], "unsupported idx type code 0x07"),
        ("short-header", lambda b: b[:10], "truncated idx header"),
        ("tiny", lambda b: b[:3], "not an idx file"),
        ("zero-dims", lambda b: b[:3] + b"\x00", "0 dimensions"),
    ],
)
@pytest.mark.parametrize("compressed", [True, False])
def test_read_idx_rejects_malformed(tmp_path, good_idx, name, mangle, match, compressed):
    payload = mangle(good_idx)
    path = tmp_path / (f"{name}.gz" if compressed else name)
    path.write_bytes(gzip.compress(payload) if compressed else payload)
    raises_user_error(path, data.read_idx, path, match=match)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda gz: gz[: len(gz) // 2],  # stream cut short
        lambda gz: gz[:12] + bytes(b ^ 0xFF for b in gz[12:]),  # deflate data garbled
        lambda gz: b"not gzip at all, just text",  # .gz name, no gzip header
    ],
    ids=["cut", "garbled", "not-gzip"],
)
def test_read_idx_rejects_corrupt_gzip(tmp_path, good_idx, mangle):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(mangle(gzip.compress(good_idx)))
    raises_user_error(path, data.read_idx, path, match="corrupt gzip")


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "nope.gz"
    raises_user_error(path, data.read_idx, path, match="file not found")
    raises_user_error(tmp_path, data.read_idx, tmp_path, match="is a folder")


# --------------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_load_mnist_28(split, n):
    images, labels = data.load_mnist(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images.min() == 0
    images[0, 0, 0] = 1  # callers get their own writable copy
    assert data.load_mnist(split)[0][0, 0, 0] == 0


@pytest.mark.parametrize("split, size", [("valid", 28), ("TRAIN", 28), ("train", 20), ("test", 16.0)])
def test_load_mnist_rejects_bad_arguments(split, size):
    with pytest.raises(UserError):
        data.load_mnist(split, size)


def copy_mnist(folder: Path, split: str = "t10k") -> Path:
    folder.mkdir()
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = f"{split}-{kind}.gz"
        shutil.copy(DATA_DIR / "mnist" / name, folder / name)
    return folder


def test_load_mnist_detects_checksum_mismatch(tmp_path):
    folder = copy_mnist(tmp_path / "mnist")
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # still a well-formed idx file, only the content differs
    path.write_bytes(gzip.compress(bytes(raw)))
    expected = data.MNIST_SHA256["t10k-labels-idx1-ubyte"]
    message = raises_user_error(path, data.load_mnist, "test", 28, match="SHA-256", mnist_dir=folder)
    assert expected in message and hashlib.sha256(bytes(raw)).hexdigest() in message


def test_load_mnist_missing_file(tmp_path):
    folder = copy_mnist(tmp_path / "mnist")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz: file not found"):
        data.load_mnist("test", mnist_dir=folder)


def test_load_mnist_16_matches_pil_and_reuses_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    images16, labels16 = data.load_mnist("test", 16)
    images28, labels28 = data.load_mnist("test", 28)
    assert images16.shape == (10000, 16, 16) and images16.dtype == np.uint8
    np.testing.assert_array_equal(labels16, labels28)
    for i in (0, 1, 4321, 9999):
        pil = np.asarray(Image.fromarray(images28[i]).resize((16, 16), Image.BILINEAR))
        np.testing.assert_array_equal(images16[i], pil)
    (cache_file,) = (tmp_path / "cache" / "mnist").glob("*.npy")

    def no_resize(images, size):
        raise AssertionError("resize called although the cache should have been used")

    monkeypatch.setattr(data, "_resize_images", no_resize)
    data._IDX_MEMO.clear()  # behave like a fresh process
    again, labels_again = data.load_mnist("test", 16)
    np.testing.assert_array_equal(again, images16)
    np.testing.assert_array_equal(labels_again, labels16)

    # A damaged cache file is rebuilt, not trusted and not an error.
    monkeypatch.undo()
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    cache_file.write_bytes(b"garbage")
    np.testing.assert_array_equal(data.load_mnist("test", 16)[0], images16)
    assert np.load(cache_file).shape == (10000, 16, 16)


# --------------------------------------------------------------------------------------------------
# FashionMNIST discovery
# --------------------------------------------------------------------------------------------------


def fake_fashion_dir(folder: Path, names=IDX_NAMES, gz: bool = True) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / (name + (".gz" if gz else ""))).write_bytes(b"")
    return folder


@pytest.fixture
def no_default_fashion(tmp_path, monkeypatch):
    """Point both default locations into tmp_path (where they do not exist) and unset the env var."""
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian" / "fashion-mnist")
    monkeypatch.setattr(data, "REPO_ROOT", tmp_path / "repo")
    return tmp_path


def test_find_fashion_mnist_search_order(no_default_fashion, monkeypatch):
    root = no_default_fashion
    shared = fake_fashion_dir(root / "shared" / "data" / "fashion-mnist", gz=False)
    assert data.find_fashion_mnist() == shared
    debian = fake_fashion_dir(root / "debian" / "fashion-mnist")
    assert data.find_fashion_mnist() == debian
    from_env = fake_fashion_dir(root / "env")
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(from_env))
    assert data.find_fashion_mnist() == from_env
    explicit = fake_fashion_dir(root / "explicit")
    assert data.find_fashion_mnist(explicit) == explicit
    assert data.find_fashion_mnist(str(explicit)) == explicit


def test_find_fashion_mnist_explicit_choices_are_final(no_default_fashion, monkeypatch):
    root = no_default_fashion
    fake_fashion_dir(root / "debian" / "fashion-mnist")
    partial = fake_fashion_dir(root / "partial", names=IDX_NAMES[:3])
    message = raises_user_error(partial, data.find_fashion_mnist, partial, match="given explicitly")
    assert "t10k-labels-idx1-ubyte(.gz)" in message and "train-images" not in message
    missing = root / "missing"
    raises_user_error(missing, data.find_fashion_mnist, missing, match="does not exist")
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(partial))
    raises_user_error(partial, data.find_fashion_mnist, match=data.FASHION_MNIST_ENV)


def test_find_fashion_mnist_not_found_message(no_default_fashion):
    root = no_default_fashion
    fake_fashion_dir(root / "repo" / ".." / "shared" / "data" / "fashion-mnist", names=IDX_NAMES[1:])
    with pytest.raises(UserError) as info:
        data.find_fashion_mnist()
    message = str(info.value)
    assert "\n" not in message
    assert str(root / "debian" / "fashion-mnist") in message
    assert str(root / "shared" / "data" / "fashion-mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message and data.FASHION_MNIST_ENV in message


def test_load_fashion_mnist_rejects_other_files(tmp_path):
    # The right names holding the wrong data (MNIST) must not pass for FashionMNIST.
    folder = tmp_path / "not-fashion"
    folder.mkdir()
    for name in IDX_NAMES:
        (folder / f"{name}.gz").symlink_to(DATA_DIR / "mnist" / f"{name}.gz")
    raises_user_error(folder, data.load_fashion_mnist, "test", folder, match="SHA-256")


def test_load_fashion_mnist():
    images, labels = data.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


# --------------------------------------------------------------------------------------------------
# tops
# --------------------------------------------------------------------------------------------------


def test_cli_rebuild_reproduces_committed_and_published_tops(tmp_path, capsys, monkeypatch):
    """CI test: finds FashionMNIST by itself (normally ../shared/data/fashion-mnist)."""
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    out = tmp_path / "tops"
    assert data.cli_build_tops(str(out), None) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"tops-20x20flattened_x_{s}.csv" for s in data.TOPS_SPLITS
    )
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3
    for split in data.TOPS_SPLITS:
        built = data.tops_file(split, "x", out).read_bytes()
        assert built == data.tops_file(split, "x", DATA_DIR / "tops").read_bytes(), split
        digest = hashlib.md5(built).hexdigest()
        assert any(str(data.tops_file(split, "x", out)) in line and digest in line for line in printed)
        if split in PUBLISHED_MD5:
            assert digest == PUBLISHED_MD5[split]


def test_tops_features_exact_fallback_agrees(monkeypatch):
    images, _ = data.load_fashion_mnist("test")
    sample = images[:25]
    fast = data.tops_features(sample)
    monkeypatch.setattr(data, "_near_rounding_boundary", lambda values: np.ones(values.shape, bool))
    exact = data.tops_features(sample)
    assert fast.shape == (25, 400) and fast.dtype == np.float64
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-13)
    assert data._tops_csv_bytes(fast) == data._tops_csv_bytes(exact)


def test_near_rounding_boundary():
    values = np.array([0.1235, -0.1235, 0.5, -1.0, 0.0, 1e-14, 2.5e-5, 0.12351, 9.995, 0.477])
    flagged = data._near_rounding_boundary(values)
    # 0.1235 and 9.995 are (binary approximations of) midpoints; 0 and 1e-14 are too close to zero.
    assert flagged.tolist() == [True, True, False, False, True, True, False, False, True, False]


def test_build_tops_checks_provenance_labels(tmp_path):
    provenance = tmp_path / "y"
    shutil.copytree(DATA_DIR / "tops", provenance, ignore=shutil.ignore_patterns("*_x_*"))
    path = data.tops_file("valid", "y", provenance)
    lines = path.read_text().splitlines(keepends=True)
    assert lines[1].startswith("top,")
    lines[1] = lines[1].replace("top,", "shirt,", 1)
    path.write_text("".join(lines))
    out = tmp_path / "out"
    raises_user_error(
        path, data.build_tops, out, None, match="line 2: .* label 0, not 'shirt'", provenance_dir=provenance
    )
    assert not out.exists() or not any(out.iterdir())  # nothing written


@pytest.mark.parametrize(
    "content, match",
    [
        ("category_name,original_file_name\n", "header must be"),
        ("category_name,original_file_name,original_file_row_id\n", "no data rows"),
        ("category_name,original_file_name,original_file_row_id\ntop,train,x1\n", "line 2: .*not a row"),
        ("category_name,original_file_name,original_file_row_id\ntop,test,1\n", "line 2: original_file"),
        ("category_name,original_file_name,original_file_row_id\ncoat,train,1\n", "unknown category"),
    ],
)
def test_read_provenance_rejects_malformed(tmp_path, content, match):
    path = tmp_path / "y.csv"
    path.write_text(content)
    raises_user_error(path, data._read_provenance, path, match=match)


@pytest.mark.parametrize("split, n", [("train", 3000), ("valid", 1500), ("test", 1500)])
def test_load_tops(split, n):
    x = data.load_tops(split)
    assert x.shape == (n, 400) and x.dtype == np.float64
    # values lie near [-1, 1]; the spline overshoots a little at edges (no clipping)
    assert np.isfinite(x).all() and -2 < x.min() < -1 and 1 < x.max() < 2


def tops_text(rows: list[str]) -> str:
    return ",".join(data.TOPS_HEADER) + "\n" + "".join(r + "\n" for r in rows)


GOOD_ROW = ",".join(["0.5"] * 400)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "header"),
        ("pixel000,pixel001\n0,1\n", "header"),
        (tops_text([]), "no data rows"),
        (tops_text([GOOD_ROW, ",".join(["0.5"] * 399)]), "line 3: expected 400 values, got 399"),
        (tops_text([GOOD_ROW, ""]), "line 3: expected 400 values, got 1"),
        (tops_text([GOOD_ROW.replace("0.5", "abc", 1)]), "line 2: pixel000 value 'abc' is not a number"),
        (
            tops_text([GOOD_ROW, "0.5," * 7 + "nan" + ",0.5" * 392]),
            "line 3: non-finite value in column pixel007",
        ),
    ],
)
def test_load_tops_rejects_malformed(tmp_path, text, match):
    path = data.tops_file("valid", "x", tmp_path)
    path.write_text(text)
    raises_user_error(path, data.load_tops, "valid", tmp_path, match=match)


def test_load_tops_missing_and_bad_split(tmp_path):
    path = data.tops_file("test", "x", tmp_path)
    raises_user_error(path, data.load_tops, "test", tmp_path, match="not found")
    with pytest.raises(UserError, match="unknown tops split"):
        data.load_tops("validation")


# --------------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------------


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "file.csv"
    target.write_bytes(b"old")

    def fail_half_way(handle):
        handle.write(b"new but incomplete")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        data._atomic_write(target, fail_half_way)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.csv"]
    data._atomic_write(target, lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["file.csv"]
