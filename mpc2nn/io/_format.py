"""Saving, loading and exporting mpc2nn objects.

File format (``.mpc2nn``): a zip archive holding

* ``metadata.json`` — ``format`` (``"mpc2nn"``), ``format_version`` (integer),
  ``mpc2nn_version``, ``kind`` (``"MPCProblem"``, ``"CondensedQP"``,
  ``"ImplicitNetwork"``, ``"Partition"``, ...), ``created`` (UTC, ISO 8601), ``content_hash`` and
  ``problem_hash`` (SHA-256, see below), and kind-specific ``fields``
  (horizon, names, construction, depth, error bound ...);
* ``arrays/NAME.npy`` — one NumPy ``.npy`` file per array (readable from any
  language with a zip and an npy reader).

``content_hash`` is the SHA-256 of every array (name, dtype, shape, bytes, in
name order) and the ``fields``; ``problem_hash`` the same over the arrays that
define the problem (for a network: its QP). :func:`load` recomputes both and
refuses a file whose hashes do not match (corrupted or edited), whose format
version is newer than this mpc2nn reads, or — given ``expect_problem`` — that
belongs to another problem.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .._checks import as_path
from .._version import __version__
from ..exceptions import FileFormatError, MissingDependencyError, Mpc2nnError, UnsupportedObjectError
from ..qp import as_qp
from ._consistency import check_consistent
from ._kinds import KINDS, is_explicit

__all__ = ["save", "load", "problem_hash", "FORMAT_VERSION"]


#: Version of the file layout written by :func:`save`.
FORMAT_VERSION = 1


def _hash(arrays: dict[str, np.ndarray], fields: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps(fields, sort_keys=True).encode())
    return h.hexdigest()


def problem_hash(obj) -> str:
    """SHA-256 of the QP ``(H, F, G, w, E)`` behind ``obj``.

    An MPCProblem is condensed first, so a problem, its QP and every network
    compiled from it share one hash.

    Parameters
    ----------
    obj : MPCProblem, CondensedQP, ImplicitNetwork or explicit network
        Anything with a QP behind it (an explicit network: its implicit network's).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    qp = as_qp(obj.net if is_explicit(obj) else obj)
    return _hash({k: getattr(qp, k) for k in ("H", "F", "G", "w", "E")}, {})


def _kind_of(obj) -> str:
    for kind, (matches, *_) in KINDS.items():
        if matches(obj):
            return kind
    raise UnsupportedObjectError(f"save: expected an MPCProblem, CondensedQP, ImplicitNetwork, explicit network or "
                                 f"Partition, got {type(obj).__name__}")


def _parts(kind: str):
    """``(to_parts, from_parts)`` of a kind."""
    return KINDS[kind][1], KINDS[kind][2]


def save(obj, path) -> Path:
    """Write ``obj`` to ``path`` in the documented ``.mpc2nn`` format.

    Parameters
    ----------
    obj : MPCProblem, CondensedQP, ImplicitNetwork or explicit network
        The object (an explicit network must be a pure construction; the hybrid mode is not stored).
    path : str or path-like
        File to write (replaced if it exists).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        ``obj`` is of no savable kind.

    Examples
    --------
    >>> import mpc2nn, tempfile, os
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> path = mpc2nn.save(net, os.path.join(tempfile.mkdtemp(), "net.mpc2nn"))
    >>> mpc2nn.load(path).W.shape
    (20, 20)
    """
    kind = _kind_of(obj)
    arrays, fields = _parts(kind)[0](obj)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    meta = dict(format="mpc2nn", format_version=FORMAT_VERSION, mpc2nn_version=__version__, kind=kind,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                content_hash=_hash(arrays, fields), problem_hash=problem_hash(obj), fields=fields)
    path = as_path("path", path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta, indent=1))
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            zf.writestr(f"arrays/{name}.npy", buf.getvalue())
    return path


def _read_archive(path: Path, data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """``(metadata, arrays)`` of a file's bytes; anything unreadable is a FileFormatError.

    Every failure of the zip and npy readers on these bytes means a corrupted or foreign file (seen
    on byte flips: ``zlib.error``, ``NotImplementedError`` for a flipped compression method,
    ``EOFError``, ``UnicodeDecodeError``), so all of them are caught here — reading bytes already
    in memory touches no file system and cannot fail otherwise.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            meta = json.loads(zf.read("metadata.json"))
            arrays = {}
            for name in zf.namelist():
                if name.startswith("arrays/") and name.endswith(".npy"):
                    arrays[name[len("arrays/"):-4]] = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
    except Exception as exc:  # every failure: see the docstring
        raise FileFormatError(f"{path}: not a readable mpc2nn file ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != "mpc2nn":
        raise FileFormatError(f"{path}: metadata.json does not declare format 'mpc2nn'")
    return meta, arrays


def load(path, *, expect_problem=None):
    """Read an object written by :func:`save`, checking format version and hashes.

    Parameters
    ----------
    path : str or path-like
        The file.
    expect_problem : MPCProblem, CondensedQP or ImplicitNetwork, optional
        If given, the file must belong to the same problem (same ``problem_hash``).

    Returns
    -------
    MPCProblem, CondensedQP, ImplicitNetwork or ExplicitNetwork
        The object saved, of the kind saved.

    Raises
    ------
    FileFormatError
        Not an mpc2nn file (or not readable: every corruption ends here), an invalid
        or newer format version, a hash mismatch (corrupted or edited file), parts that
        do not agree with each other (a QP that is not its embedded problem's, a
        network whose weights are not its QP's: see :mod:`mpc2nn.io._consistency`), or
        a different problem than ``expect_problem``.
    FileNotFoundError, PermissionError
        The file cannot be opened.
    """
    path = as_path("path", path)
    with open(path, "rb") as fh:  # a missing or unreadable file is an OSError, as for any other file
        data = fh.read()
    meta, arrays = _read_archive(path, data)
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileFormatError(f"{path}: invalid format version {version!r} (expected an integer from 1 to "
                              f"{FORMAT_VERSION}); the file is corrupted or not written by mpc2nn")
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{path}: format version {version!r} is newer than this mpc2nn reads "
                              f"({FORMAT_VERSION}); upgrade mpc2nn (file written by {meta.get('mpc2nn_version')})")
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise FileFormatError(f"{path}: unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    fields = meta.get("fields")
    if not isinstance(fields, dict):
        raise FileFormatError(f"{path}: metadata.json has no 'fields' table (got {type(fields).__name__})")
    if _hash(arrays, fields) != meta.get("content_hash"):
        raise FileFormatError(f"{path}: content hash mismatch: the arrays or fields were changed or corrupted "
                              "after saving; refusing to load")
    try:
        obj = _parts(kind)[1](arrays, fields)
        if not KINDS[kind][0](obj):
            raise FileFormatError(f"the parts make a {type(obj).__name__}, not a {kind}")
        check_consistent(obj)
    except MissingDependencyError:
        raise
    except FileFormatError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    except Mpc2nnError as exc:
        raise FileFormatError(f"{path}: the file's parts do not make a valid {kind}: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        # hashes matched, so the file was written (or edited and re-hashed) with parts that do not fit
        raise FileFormatError(f"{path}: the file's parts do not make a {kind} ({type(exc).__name__}: {exc}); "
                              "it was edited or written by something else than mpc2nn.save") from None
    if problem_hash(obj) != meta.get("problem_hash"):
        raise FileFormatError(f"{path}: problem hash mismatch: the file's problem does not match its metadata")
    if expect_problem is not None and problem_hash(expect_problem) != meta["problem_hash"]:
        raise FileFormatError(f"{path}: belongs to another problem (problem hash {meta['problem_hash'][:12]}… "
                              f"≠ {problem_hash(expect_problem)[:12]}… of the expected problem)")
    return obj
