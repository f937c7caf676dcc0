"""Validated loading of the course data and the reproducible build of the tops data set.

Everything a user can get wrong (a missing or corrupt file, a wrong folder, an unknown split) raises
:class:`~gmmcourse.errors.UserError` with one line that names the file and the problem. Files are
never written half-way: each is written to a temporary file in the target folder and then moved into
place with :func:`os.replace`.

Public functions
----------------
read_idx
    Read one idx file (gzip-compressed or raw) into an array.
load_mnist
    MNIST images and labels, 28x28 or 16x16, checked against known SHA-256 digests.
find_fashion_mnist, load_fashion_mnist
    Locate (never download) and load FashionMNIST.
tops_features, build_tops, load_tops
    The tops-20x20flattened recipe, the build of its three ``x`` CSV files, and their loader.
cli_build_tops
    The body of ``gmmcourse data build-tops``.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import os
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gmmcourse.errors import UserError
from gmmcourse.paths import CACHE_DIR, DATA_DIR, REPO_ROOT

# --------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------

#: idx type codes and the (big-endian) element type each one stands for.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The split names of MNIST and FashionMNIST and the file-name prefix of each.
IDX_SPLITS = {"train": "train", "test": "t10k"}

#: SHA-256 of the *uncompressed* MNIST idx files (see DESIGN.md, "Data facts").
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: SHA-256 of the *uncompressed* FashionMNIST idx files (Zalando's release, as in Debian's package).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

MNIST_SIZES = (28, 16)

FASHION_MNIST_ENV = "GMMCOURSE_FASHION_MNIST"
#: Where Debian's package ``dataset-fashion-mnist`` installs the files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

TOPS_SPLITS = ("train", "valid", "test")
#: tops category name -> FashionMNIST class label.
TOPS_CATEGORIES = {"top": 0, "pullover": 2, "shirt": 6}
TOPS_PROVENANCE_HEADER = ["category_name", "original_file_name", "original_file_row_id"]
TOPS_SIDE_IN = 28
TOPS_SIDE_OUT = 20
TOPS_HEADER = [f"pixel{i:03d}" for i in range(TOPS_SIDE_OUT * TOPS_SIDE_OUT)]
TOPS_FORMAT = "%.3g"
#: Half-width of the band around a ``%.3g`` rounding boundary in which the fast matrix resampling is
#: not trusted to round like the reference spline (its error is about 2e-15 on these data).
_ROUNDING_GUARD = 1e-12

# In-process memo of checked idx arrays: (path, size, mtime_ns, sha256) -> read-only array.
_IDX_MEMO: dict[tuple[str, int, int, str], np.ndarray] = {}


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _check_choice(value: object, allowed, what: str) -> None:
    """Raise a UserError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise UserError(f"unknown {what} {value!r}; choose one of {choices}")


def _read_file_bytes(path: Path) -> bytes:
    """Return the bytes stored in ``path``, turning OS errors into a UserError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _is_gzip(path: Path, raw: bytes) -> bool:
    """Tell whether ``path`` should be gunzipped: it ends in ``.gz`` or starts with the gzip magic."""
    return path.suffix == ".gz" or raw[:2] == b"\x1f\x8b"


def _idx_bytes(path: Path) -> bytes:
    """Return the uncompressed bytes of an idx file that may be gzip-compressed."""
    raw = _read_file_bytes(path)
    if not _is_gzip(path, raw):
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: corrupt gzip data ({reason})") from None


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Decode the uncompressed bytes of an idx file.

    Parameters
    ----------
    data : bytes
        The whole uncompressed file.
    path : Path
        Only used to name the file in error messages.

    Returns
    -------
    np.ndarray
        Writable native-endian array with the shape given by the header.
    """
    if len(data) < 4:
        raise UserError(f"{path}: not an idx file (only {len(data)} bytes, the header alone needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise UserError(f"{path}: not an idx file (bad magic {data[:4].hex()}, must start with 0000)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise UserError(f"{path}: unsupported idx type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise UserError(f"{path}: idx header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise UserError(
            f"{path}: truncated idx header ({len(data)} bytes, {ndim} dimensions need {header_len})"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header_len + int(np.prod(dims, dtype=object)) * dtype.itemsize
    if len(data) < expected:
        raise UserError(f"{path}: truncated idx file ({len(data)} bytes, shape {dims} needs {expected})")
    if len(data) > expected:
        extra = len(data) - expected
        raise UserError(f"{path}: {extra} unexpected trailing bytes after the idx data of shape {dims}")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _new_file_mode(path: Path) -> int:
    """Permission bits for a file about to replace ``path``: its current ones, else 0o666 & ~umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` via a temporary file in the same folder, then move it into place.

    Parameters
    ----------
    path : Path
        Final location; its folder is created if needed.
    write : callable
        Called with the open binary temporary file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp_name, _new_file_mode(path))
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _md5_file(path: Path) -> str:
    return hashlib.md5(_read_file_bytes(path)).hexdigest()


# --------------------------------------------------------------------------------------------------
# idx files
# --------------------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file (the MNIST container format), gzip-compressed or raw.

    Parameters
    ----------
    path : str or PathLike
        The file. It is gunzipped when its name ends in ``.gz`` or it starts with the gzip magic.

    Returns
    -------
    np.ndarray
        Native-endian array whose shape is the one in the header; dtype from the type code
        (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64).

    Raises
    ------
    UserError
        Missing or unreadable file, corrupt gzip data, bad magic, unknown type code, or a payload
        shorter or longer than the header announces.
    """
    path = Path(path)
    return _parse_idx(_idx_bytes(path), path)


def _read_checked_idx(path: Path, expected_sha256: str, what: str = "idx") -> np.ndarray:
    """Read an idx file whose uncompressed bytes must have a known SHA-256.

    The checked array is memoised in this process (keyed by path, size and mtime) so that repeated
    loads neither re-read nor re-hash the file. The returned array is read-only; copy it before
    handing it out.
    """
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected_sha256) if stat else None
    if key is not None and key in _IDX_MEMO:
        return _IDX_MEMO[key]
    data = _idx_bytes(path)
    actual = _sha256(data)
    if actual != expected_sha256:
        raise UserError(
            f"{path}: SHA-256 of the uncompressed data is {actual}, expected {expected_sha256}; "
            f"the file is corrupt or not the standard {what} file"
        )
    array = _parse_idx(data, path)
    array.flags.writeable = False
    if key is not None:
        _IDX_MEMO[key] = array
    return array


def _idx_file(folder: Path, base: str) -> Path | None:
    """Return the file ``base.gz`` or ``base`` in ``folder`` (gzip preferred), or None if neither exists."""
    for name in (f"{base}.gz", base):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _load_checked_pair(folder: Path, split: str, digests: dict[str, str], what: str):
    """Load and cross-check the images and labels of one split of an MNIST-style folder.

    Returns read-only ``(images (N, 28, 28) uint8, labels (N,) uint8)``.
    """
    arrays = {}
    for kind in ("labels", "images"):
        base = f"{IDX_SPLITS[split]}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte"
        path = _idx_file(folder, base)
        if path is None:
            raise UserError(f"{folder / (base + '.gz')}: file not found ({what} {split} {kind})")
        arrays[kind] = (path, _read_checked_idx(path, digests[base], what))
    (label_path, labels), (image_path, images) = arrays["labels"], arrays["images"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(f"{image_path}: expected uint8 images of shape (N, 28, 28), got {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise UserError(f"{label_path}: expected {len(images)} uint8 labels, got shape {labels.shape}")
    return images, labels


# --------------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------------


def _resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize each uint8 image to ``size x size`` with PIL's bilinear filter.

    This is what torchvision's ``Resize((size, size))`` does to a PIL image.

    Parameters
    ----------
    images : np.ndarray
        Shape (N, H, W), uint8.
    size : int
        Output side length.

    Returns
    -------
    np.ndarray
        Shape (N, size, size), uint8.
    """
    from PIL import Image

    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return out


def _load_npy_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """Return the cached uint8 array at ``path`` if it exists and has ``shape``; else None."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.dtype != np.uint8 or array.shape != shape:
        return None
    return array


def load_mnist(split: str, size: int = 28, *, mnist_dir: str | os.PathLike | None = None):
    """Load MNIST images and labels, checked against the known SHA-256 digests.

    Parameters
    ----------
    split : {'train', 'test'}
        ``'train'`` has 60000 images, ``'test'`` (the t10k files) 10000.
    size : {28, 16}
        Side length. 16 resizes each image with PIL's bilinear filter (like torchvision's
        ``Resize((16, 16))``); the result is cached under ``CACHE_DIR/mnist``, keyed by the
        SHA-256 of the source file, so later loads are fast.
    mnist_dir : str or PathLike, optional
        Folder with the four idx files (``.gz`` or raw). Default ``DATA_DIR/'mnist'``.

    Returns
    -------
    images : np.ndarray
        Shape (N, size, size), uint8, values 0..255.
    labels : np.ndarray
        Shape (N,), uint8, values 0..9.

    Raises
    ------
    UserError
        Unknown split or size, missing or corrupt file, or a checksum mismatch.
    """
    _check_choice(split, tuple(IDX_SPLITS), "MNIST split")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise UserError(f"MNIST image size must be an integer (28 or 16), got {size!r}")
    _check_choice(int(size), MNIST_SIZES, "MNIST image size")
    size = int(size)
    folder = Path(mnist_dir) if mnist_dir is not None else DATA_DIR / "mnist"
    if size == 28:
        images, labels = _load_checked_pair(folder, split, MNIST_SHA256, "MNIST")
        return images.copy(), labels.copy()
    return _load_mnist_resized(folder, split, size)


def _load_mnist_resized(folder: Path, split: str, size: int):
    """Load resized MNIST: the ``size != 28`` branch of :func:`load_mnist`, with its on-disk cache.

    The cache file name carries the SHA-256 of the source images file *as stored* (compressed or
    not). A cache file is only written after the source has passed the full uncompressed checksum,
    so a hit on that name proves the source is the checked one without decompressing it again.
    """
    labels_base = f"{IDX_SPLITS[split]}-labels-idx1-ubyte"
    images_base = f"{IDX_SPLITS[split]}-images-idx3-ubyte"
    labels_path = _idx_file(folder, labels_base)
    images_path = _idx_file(folder, images_base)
    for base, path in ((labels_base, labels_path), (images_base, images_path)):
        if path is None:
            raise UserError(f"{folder / (base + '.gz')}: file not found (MNIST {split})")
    labels = _read_checked_idx(labels_path, MNIST_SHA256[labels_base], "MNIST")
    stored_sha = _sha256(_read_file_bytes(images_path))
    cache_path = CACHE_DIR / "mnist" / f"{images_base}-{size}x{size}-pil-bilinear-{stored_sha[:24]}.npy"
    shape = (len(labels), size, size)
    resized = _load_npy_cache(cache_path, shape)
    if resized is None:
        images, labels = _load_checked_pair(folder, split, MNIST_SHA256, "MNIST")
        resized = _resize_images(images, size)
        try:
            _atomic_write(cache_path, lambda handle: np.save(handle, resized, allow_pickle=False))
        except UserError as exc:  # an unwritable cache only costs speed
            warnings.warn(f"not caching resized MNIST: {exc}", stacklevel=3)
    return resized, labels.copy()


# --------------------------------------------------------------------------------------------------
# FashionMNIST
# --------------------------------------------------------------------------------------------------


def _missing_idx_files(folder: Path) -> list[str]:
    """Names of the four standard idx files that ``folder`` lacks (as ``name(.gz)``)."""
    bases = [f"{p}-{k}" for p in IDX_SPLITS.values() for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    return [f"{b}(.gz)" for b in bases if _idx_file(folder, b) is None]


def _check_fashion_dir(folder: Path, origin: str) -> Path:
    """Return ``folder`` if it holds the four FashionMNIST files, else raise naming ``origin``."""
    if not folder.is_dir():
        raise UserError(f"FashionMNIST folder {folder} ({origin}) does not exist or is not a folder")
    missing = _missing_idx_files(folder)
    if missing:
        raise UserError(f"FashionMNIST folder {folder} ({origin}) lacks {', '.join(missing)}")
    return folder


def find_fashion_mnist(path: str | os.PathLike | None = None) -> Path:
    """Locate a folder holding the four FashionMNIST idx files; never downloads anything.

    Search order: the ``path`` argument; else the environment variable ``GMMCOURSE_FASHION_MNIST``;
    else ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``); else
    ``<REPO_ROOT>/../shared/data/fashion-mnist``. An explicit argument or a set environment variable
    is final: if that folder is incomplete the error says so instead of looking elsewhere.

    Parameters
    ----------
    path : str or PathLike, optional
        Folder to use.

    Returns
    -------
    Path
        The folder; each of ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` is in it, gzipped or raw.

    Raises
    ------
    UserError
        The chosen folder is incomplete, or no default location holds the files.
    """
    if path is not None:
        return _check_fashion_dir(Path(path), "given explicitly")
    from_env = os.environ.get(FASHION_MNIST_ENV, "")
    if from_env:
        return _check_fashion_dir(Path(from_env), f"from {FASHION_MNIST_ENV}")
    tried = [DEBIAN_FASHION_MNIST_DIR, REPO_ROOT.parent / "shared" / "data" / "fashion-mnist"]
    for folder in tried:
        if folder.is_dir() and not _missing_idx_files(folder):
            return folder
    raise UserError(
        f"FashionMNIST not found; tried {', '.join(str(t) for t in tried)}; "
        f"install it with 'apt-get install dataset-fashion-mnist' or set {FASHION_MNIST_ENV} "
        "(or pass --fashion-mnist) to a folder with train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
    )


def load_fashion_mnist(split: str, path: str | os.PathLike | None = None):
    """Load FashionMNIST images and labels, checked against the known SHA-256 digests.

    Parameters
    ----------
    split : {'train', 'test'}
        ``'train'`` has 60000 images, ``'test'`` (the t10k files) 10000.
    path : str or PathLike, optional
        Folder with the files; default found by :func:`find_fashion_mnist`.

    Returns
    -------
    images : np.ndarray
        Shape (N, 28, 28), uint8.
    labels : np.ndarray
        Shape (N,), uint8, values 0..9 (0 T-shirt/top, 2 pullover, 6 shirt, ...).
    """
    _check_choice(split, tuple(IDX_SPLITS), "FashionMNIST split")
    folder = find_fashion_mnist(path)
    images, labels = _load_checked_pair(folder, split, FASHION_MNIST_SHA256, "FashionMNIST")
    return images.copy(), labels.copy()


# --------------------------------------------------------------------------------------------------
# tops-20x20flattened
# --------------------------------------------------------------------------------------------------


def tops_file(split: str, kind: str, folder: str | os.PathLike) -> Path:
    """Path of ``tops-20x20flattened_{kind}_{split}.csv`` in ``folder`` (kind is 'x' or 'y')."""
    return Path(folder) / f"tops-20x20flattened_{kind}_{split}.csv"


@functools.lru_cache(maxsize=None)
def _interpolation_matrix(n_in: int = TOPS_SIDE_IN, n_out: int = TOPS_SIDE_OUT) -> np.ndarray:
    """Matrix ``A`` (n_out, n_in) of the 1-D not-a-knot cubic interpolating spline.

    The spline through values ``v`` at ``0..n_in-1``, evaluated at ``linspace(0, n_in-1, n_out)``,
    is ``A @ v``: interpolation with ``s=0`` is linear in the data, so column ``j`` is the spline
    of the ``j``-th unit vector.
    """
    from scipy.interpolate import make_interp_spline

    grid = np.arange(n_in, dtype=np.float64)
    spline = make_interp_spline(grid, np.eye(n_in), k=3)  # k=3 defaults to not-a-knot ends
    matrix = spline(np.linspace(0.0, n_in - 1.0, n_out))
    matrix.flags.writeable = False
    return matrix


def _spline_resample_one(image: np.ndarray) -> np.ndarray:
    """Resample one scaled 28x28 image the reference way: FITPACK's bicubic interpolating spline."""
    from scipy.interpolate import RectBivariateSpline

    grid = np.arange(TOPS_SIDE_IN, dtype=np.float64)
    points = np.linspace(0.0, TOPS_SIDE_IN - 1.0, TOPS_SIDE_OUT)
    spline = RectBivariateSpline(grid, grid, image.astype(np.float64), kx=3, ky=3, s=0)
    return spline(points, points)


def _near_rounding_boundary(values: np.ndarray, tol: float = _ROUNDING_GUARD) -> np.ndarray:
    """Flag values whose ``%.3g`` text could change under a perturbation of size ``tol``.

    Those are values within ``tol`` of zero (sign and exponent are fragile there) or within
    ``tol`` of a midpoint between two 3-significant-digit numbers.

    Parameters
    ----------
    values : np.ndarray
        Any shape, float64.
    tol : float
        Absolute half-width of the band.

    Returns
    -------
    np.ndarray
        Boolean, same shape as ``values``.
    """
    magnitude = np.abs(values)
    tiny = magnitude < tol
    safe = np.where(tiny, 1.0, magnitude)
    unit = 10.0 ** (np.floor(np.log10(safe)) - 2)  # value of one step in the 3rd significant digit
    scaled = safe / unit
    distance = np.abs(scaled - np.floor(scaled) - 0.5) * unit
    return tiny | (distance < tol)


def tops_features(images: np.ndarray) -> np.ndarray:
    """Turn 28x28 uint8 FashionMNIST images into tops-20x20flattened feature rows.

    Recipe: scale in float32 as ``img / 255 * 2 - 1``; resample with the not-a-knot bicubic
    interpolating spline on the pixel-centre grid ``0..27``, evaluated at ``linspace(0, 27, 20)`` on
    both axes; no clipping; flatten row-major.

    The spline is applied as two matrix products, ``A @ z @ A.T``, which agrees with
    ``RectBivariateSpline(..., kx=3, ky=3, s=0)`` to about 2e-15. Any image with a value so close to
    a ``%.3g`` rounding boundary that this tiny difference could change the written text is
    recomputed with ``RectBivariateSpline`` itself, so the CSV text is exactly the reference one.

    Parameters
    ----------
    images : np.ndarray
        Shape (N, 28, 28), uint8.

    Returns
    -------
    np.ndarray
        Shape (N, 400), float64.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (TOPS_SIDE_IN, TOPS_SIDE_IN):
        raise ValueError(f"expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}")
    scaled = images.astype(np.float32) / np.float32(255) * np.float32(2) - np.float32(1)
    matrix = _interpolation_matrix()
    out = matrix @ scaled.astype(np.float64) @ matrix.T
    fragile = _near_rounding_boundary(out).any(axis=(1, 2))
    for i in np.flatnonzero(fragile):
        out[i] = _spline_resample_one(scaled[i])
    return out.reshape(len(images), TOPS_SIDE_OUT * TOPS_SIDE_OUT)


def _read_provenance(path: Path) -> list[tuple[str, str, int]]:
    """Read and validate one ``y`` provenance table.

    Returns
    -------
    list of (category_name, original_file_name, original_file_row_id)
    """
    text = _read_file_bytes(path).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header != TOPS_PROVENANCE_HEADER:
        raise UserError(f"{path}: header must be {','.join(TOPS_PROVENANCE_HEADER)}, got {header}")
    rows = []
    for line_no, fields in enumerate(reader, start=2):
        if len(fields) != 3:
            raise UserError(f"{path}, line {line_no}: expected 3 fields, got {len(fields)}")
        category, source, row_id = fields
        if category not in TOPS_CATEGORIES:
            raise UserError(f"{path}, line {line_no}: unknown category {category!r}")
        if source not in IDX_SPLITS.values():
            raise UserError(f"{path}, line {line_no}: original_file_name must be 'train' or 't10k'")
        if not row_id.isdigit():
            raise UserError(f"{path}, line {line_no}: original_file_row_id {row_id!r} is not a row number")
        rows.append((category, source, int(row_id)))
    if not rows:
        raise UserError(f"{path}: no data rows")
    return rows


def _select_tops_images(path: Path, rows, sources: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Pick the provenance rows' images, checking each row's index and FashionMNIST label."""
    picked = np.empty((len(rows), TOPS_SIDE_IN, TOPS_SIDE_IN), dtype=np.uint8)
    for i, (category, source, row_id) in enumerate(rows):
        images, labels = sources[source]
        if row_id >= len(images):
            raise UserError(f"{path}, line {i + 2}: row {row_id} is past the end of the {source} file")
        if labels[row_id] != TOPS_CATEGORIES[category]:
            raise UserError(
                f"{path}, line {i + 2}: FashionMNIST {source} row {row_id} has label {labels[row_id]}, "
                f"not {category!r} ({TOPS_CATEGORIES[category]})"
            )
        picked[i] = images[row_id]
    return picked


def _tops_csv_bytes(features: np.ndarray) -> bytes:
    """Return the CSV text of feature rows: header pixel000..pixel399, ``%.3g``, newline line ends."""
    buffer = io.StringIO()
    np.savetxt(
        buffer,
        features,
        fmt=TOPS_FORMAT,
        delimiter=",",
        newline="\n",
        header=",".join(TOPS_HEADER),
        comments="",
    )
    return buffer.getvalue().encode("ascii")


def build_tops(
    out_dir: str | os.PathLike,
    fashion_mnist_dir: str | os.PathLike | None = None,
    *,
    provenance_dir: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Build the three tops-20x20flattened ``x`` CSV files from FashionMNIST.

    Each provenance table ``tops-20x20flattened_y_{split}.csv`` (columns category_name,
    original_file_name, original_file_row_id) lists which FashionMNIST image each output row comes
    from; the rows are converted by :func:`tops_features` in that order and written as
    ``tops-20x20flattened_x_{split}.csv``. Nothing else is written. All three files are computed
    before any is replaced, and each is moved into place atomically.

    Parameters
    ----------
    out_dir : str or PathLike
        Output folder (created if needed).
    fashion_mnist_dir : str or PathLike, optional
        FashionMNIST folder; default found by :func:`find_fashion_mnist`.
    provenance_dir : str or PathLike, optional
        Folder with the ``y`` tables; default ``DATA_DIR/'tops'``.

    Returns
    -------
    dict
        Split name ('train', 'valid', 'test') -> path of the written file.
    """
    out_dir = Path(out_dir)
    provenance_dir = Path(provenance_dir) if provenance_dir is not None else DATA_DIR / "tops"
    folder = find_fashion_mnist(fashion_mnist_dir)
    provenance = {s: _read_provenance(tops_file(s, "y", provenance_dir)) for s in TOPS_SPLITS}
    needed = {source for rows in provenance.values() for _, source, _ in rows}
    split_of = {prefix: split for split, prefix in IDX_SPLITS.items()}
    sources = {
        src: _load_checked_pair(folder, split_of[src], FASHION_MNIST_SHA256, "FashionMNIST")
        for src in sorted(needed)
    }
    contents = {}
    for split, rows in provenance.items():
        images = _select_tops_images(tops_file(split, "y", provenance_dir), rows, sources)
        contents[split] = _tops_csv_bytes(tops_features(images))
    written = {}
    for split, payload in contents.items():
        target = tops_file(split, "x", out_dir)
        _atomic_write(target, lambda handle, payload=payload: handle.write(payload))
        written[split] = target
    return written


def load_tops(split: str, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Load one split of the committed tops-20x20flattened features.

    Parameters
    ----------
    split : {'train', 'valid', 'test'}
    data_dir : str or PathLike, optional
        Folder with the ``x`` CSV files; default ``DATA_DIR/'tops'``.

    Returns
    -------
    np.ndarray
        Shape (N, 400), float64, all finite.

    Raises
    ------
    UserError
        Unknown split, missing file, or a file that is not N rows of 400 finite numbers under the
        header pixel000..pixel399.
    """
    _check_choice(split, TOPS_SPLITS, "tops split")
    folder = Path(data_dir) if data_dir is not None else DATA_DIR / "tops"
    path = tops_file(split, "x", folder)
    text = _read_file_bytes(path).decode("ascii", errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].split(",") != TOPS_HEADER:
        raise UserError(f"{path}: first line must be the header pixel000,...,pixel399")
    if len(lines) < 2:
        raise UserError(f"{path}: no data rows")
    n_cols = len(TOPS_HEADER)
    for line_no, line in enumerate(lines[1:], start=2):
        if line.count(",") != n_cols - 1:
            raise UserError(f"{path}, line {line_no}: expected {n_cols} values, got {line.count(',') + 1}")
    try:
        values = np.loadtxt(lines[1:], delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        raise UserError(_first_non_number(path, lines)) from None
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, col = bad[0]
        raise UserError(f"{path}, line {row + 2}: non-finite value in column {TOPS_HEADER[col]}")
    return values


def _first_non_number(path: Path, lines: list[str]) -> str:
    """Error message naming the first field of a tops CSV that is not a number."""
    for line_no, line in enumerate(lines[1:], start=2):
        for column, field in zip(TOPS_HEADER, line.split(","), strict=False):
            try:
                float(field)
            except ValueError:
                return f"{path}, line {line_no}: {column} value {field!r} is not a number"
    return f"{path}: malformed tops CSV"


def cli_build_tops(out: str | None, fashion_mnist: str | None) -> int:
    """Body of ``gmmcourse data build-tops [--out DIR] [--fashion-mnist DIR]``.

    Builds the three ``x`` files (default into ``DATA_DIR/'tops'``) and prints one line per written
    file with its MD5 digest.

    Returns
    -------
    int
        0 on success; user errors are raised as :class:`UserError` for the CLI to report.
    """
    out_dir = Path(out) if out is not None else DATA_DIR / "tops"
    written = build_tops(out_dir, fashion_mnist)
    for split in TOPS_SPLITS:
        print(f"wrote {written[split]}  md5 {_md5_file(written[split])}")
    return 0
