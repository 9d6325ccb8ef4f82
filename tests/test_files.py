"""Corrupted or edited ``.mpc2nn`` files end in FileFormatError (CLI: one line, exit 2) — issue 13.

Found before: 18 of 200 random byte flips raised raw ``zlib.error`` / ``NotImplementedError``;
editing the metadata ``kind`` (not covered by the hash) gave a KeyError; ``format_version`` 0, -5
and ``true`` loaded; a re-hashed file whose embedded problem disagrees with its QP, with
``alpha < 0`` or with ``W``'s rows cut off was accepted.

Re-hashing follows the documented format (SHA-256 over name, dtype, shape and bytes of every
array in name order, then the JSON fields), written here independently of mpc2nn's code.
"""
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

import mpc2nn
from mpc2nn.exceptions import FileFormatError

DI = mpc2nn.systems.double_integrator()


def _read(path):
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
        arrays = {n[len("arrays/"):-4]: np.load(io.BytesIO(zf.read(n))) for n in zf.namelist()
                  if n.startswith("arrays/")}
    return meta, arrays


def _sha(arrays, fields):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps(fields, sort_keys=True).encode())
    return h.hexdigest()


def _write(path, meta, arrays, *, rehash=True, problem_arrays=None):
    """Write a file; with ``rehash`` its content hash (and, given the QP arrays, the problem hash) made valid."""
    if rehash:
        meta = dict(meta, content_hash=_sha(arrays, meta["fields"]))
        if problem_arrays is not None:
            meta["problem_hash"] = _sha(problem_arrays, {})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a)
            zf.writestr(f"arrays/{name}.npy", buf.getvalue())
    return path


def _objects():
    net = mpc2nn.compile(DI)
    return {"problem": DI, "qp": net.qp, "net": net}


@pytest.mark.parametrize("kind", ["problem", "qp", "net"])
def test_random_byte_flips_are_file_format_errors(kind, tmp_path):
    obj = _objects()[kind]
    data = mpc2nn.save(obj, tmp_path / "f.mpc2nn").read_bytes()
    rng = np.random.default_rng(13)
    want = mpc2nn.problem_hash(obj)
    for trial in range(60):
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            flipped[pos] ^= int(rng.integers(1, 256))
        path = tmp_path / f"flip{trial}.mpc2nn"
        path.write_bytes(bytes(flipped))
        try:
            back = mpc2nn.load(path)
        except FileFormatError:
            continue
        # a flip the format does not depend on (e.g. a zip timestamp): the object is intact
        assert mpc2nn.problem_hash(back) == want


def test_a_truncated_or_empty_file_is_a_file_format_error(tmp_path):
    data = mpc2nn.save(DI, tmp_path / "f.mpc2nn").read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "t.mpc2nn").write_bytes(data[:n])
        with pytest.raises(FileFormatError):
            mpc2nn.load(tmp_path / "t.mpc2nn")


@pytest.mark.parametrize("kind", ["CondensedQP", "ImplicitNetwork", "ExplicitNetwork", "MPCProblem", 3, None])
def test_an_edited_kind_is_a_file_format_error(kind, tmp_path):
    src = "net" if kind != "ImplicitNetwork" else "qp"
    meta, arrays = _read(mpc2nn.save(_objects()[src], tmp_path / "f.mpc2nn"))
    meta["kind"] = kind
    with pytest.raises(FileFormatError):
        mpc2nn.load(_write(tmp_path / "k.mpc2nn", meta, arrays, rehash=False))


@pytest.mark.parametrize("version", [0, -5, True, "1", 1.0, None, 99])
def test_invalid_format_versions_are_refused(version, tmp_path):
    meta, arrays = _read(mpc2nn.save(DI, tmp_path / "f.mpc2nn"))
    meta["format_version"] = version
    with pytest.raises(FileFormatError, match="format version"):
        mpc2nn.load(_write(tmp_path / "v.mpc2nn", meta, arrays, rehash=False))


@pytest.mark.parametrize("meta_edit", [lambda m: m.pop("fields"), lambda m: m.update(fields=[1, 2]),
                                       lambda m: m.pop("content_hash"), lambda m: m.update(fields={"x": 1})])
def test_broken_metadata_is_a_file_format_error(meta_edit, tmp_path):
    meta, arrays = _read(mpc2nn.save(DI, tmp_path / "f.mpc2nn"))
    meta_edit(meta)
    with pytest.raises(FileFormatError):
        mpc2nn.load(_write(tmp_path / "m.mpc2nn", meta, arrays, rehash=False))


def _qp_arrays(arrays, prefix=""):
    return {k: arrays[prefix + k] for k in ("H", "F", "G", "w", "E")}


def test_a_rehashed_qp_whose_problem_disagrees_is_refused(tmp_path):
    meta, arrays = _read(mpc2nn.save(_objects()["qp"], tmp_path / "f.mpc2nn"))
    arrays["problem.Q"] = 2.0 * arrays["problem.Q"]       # the embedded problem is no longer this QP's
    with pytest.raises(FileFormatError, match="embedded problem"):
        mpc2nn.load(_write(tmp_path / "e.mpc2nn", meta, arrays, problem_arrays=_qp_arrays(arrays)))
    meta, arrays = _read(mpc2nn.save(_objects()["qp"], tmp_path / "f.mpc2nn"))
    arrays["w"] = arrays["w"] + 1.0                        # or the QP is no longer the problem's
    with pytest.raises(FileFormatError, match="embedded problem"):
        mpc2nn.load(_write(tmp_path / "e.mpc2nn", meta, arrays, problem_arrays=_qp_arrays(arrays)))


def test_a_rescaled_qp_with_its_problem_still_loads(tmp_path):
    qp = mpc2nn.condense(DI).with_row_scaling(np.linspace(0.5, 3.0, 120))
    back = mpc2nn.load(mpc2nn.save(qp, tmp_path / "s.mpc2nn"))
    np.testing.assert_array_equal(back.G, qp.G)


@pytest.mark.parametrize("edit", ["negative alpha", "rows cut", "W edited"])
def test_a_rehashed_network_whose_weights_are_not_its_qps_is_refused(edit, tmp_path):
    meta, arrays = _read(mpc2nn.save(_objects()["net"], tmp_path / "f.mpc2nn"))
    if edit == "negative alpha":
        arrays["alpha"] = -arrays["alpha"]
    elif edit == "rows cut":
        for k in ("W", "Y", "b", "alpha"):
            arrays[k] = arrays[k][:-2] if k != "W" else arrays[k][:-2, :-2]
        arrays["W_f"] = arrays["W_f"][:, :-2]
    else:
        arrays["W"] = arrays["W"] * 1.001
    with pytest.raises(FileFormatError, match="network"):
        mpc2nn.load(_write(tmp_path / "n.mpc2nn", meta, arrays, problem_arrays=_qp_arrays(arrays, "qp.")))


def test_a_corrupted_file_is_one_line_and_exit_2_on_the_command_line(tmp_path, capfd):
    from mpc2nn.cli import main

    data = bytearray(mpc2nn.save(mpc2nn.compile(DI), tmp_path / "f.mpc2nn").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (tmp_path / "bad.mpc2nn").write_bytes(bytes(data))
    assert main(["compile", str(tmp_path / "bad.mpc2nn")]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
