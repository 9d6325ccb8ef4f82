"""Each savable kind as named arrays and JSON fields, and back."""

from __future__ import annotations

import numpy as np

from .._checks import loaded_torch, require
from ..exceptions import FileFormatError
from ..implicit import ImplicitNetwork
from ..interfaces import ExplicitLaw
from ..problem import MPCProblem, Polytope, StageConstraint, problem_fields
from ..qp import CondensedQP
from ..regions import FACET_KINDS, ROW_KINDS, Lattice, LatticeOutput, OpenFacet, Partition, Region
from ._consistency import check_buffers

__all__ = ["KINDS", "is_explicit"]


def _constraints_out(cons) -> tuple[dict, dict]:
    arrays = {}
    for i, c in enumerate(cons):
        arrays[f"constraints.{i}.C_x"], arrays[f"constraints.{i}.C_u"], arrays[f"constraints.{i}.d"] = c.C_x, c.C_u, c.d
    return arrays, {"n_constraints": len(cons)}


def _constraints_in(arrays, fields):
    return [StageConstraint(arrays[f"constraints.{i}.C_x"], arrays[f"constraints.{i}.C_u"],
                            arrays[f"constraints.{i}.d"]) for i in range(fields["n_constraints"])]


def _terminal_out(term) -> tuple[dict, dict]:
    return ({} if term is None else {"terminal.C": term.C, "terminal.d": term.d}), {}


def _terminal_in(arrays, fields):
    return Polytope(arrays["terminal.C"], arrays["terminal.d"]) if "terminal.C" in arrays else None


def _box_out(box) -> tuple[dict, dict]:
    return ({} if box is None else {"sample_box.lo": box[0], "sample_box.hi": box[1]}), {}


def _box_in(arrays, fields):
    return (arrays["sample_box.lo"], arrays["sample_box.hi"]) if "sample_box.lo" in arrays else None


#: The fields an MPCProblem stores in named parts: ``(to parts, from parts)``.
_PROBLEM_PARTS = {"constraints": (_constraints_out, _constraints_in),
                  "terminal_constraint": (_terminal_out, _terminal_in),
                  "sample_box": (_box_out, _box_in)}
#: Fields restored as stored after construction: they record how computed parts came about.
_PROVENANCE = ("terminal_set", "terminal_weight_source")


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def _problem_parts(p: MPCProblem) -> tuple[dict, dict]:
    """Arrays and fields of a problem, as :func:`~mpc2nn.problem.problem_fields` says each is stored.

    Options stored "if used" are left out of plain problems, so their files keep the layout (and hashes) of 0.1.
    """
    arrays, fields = {}, {}
    for name, sp in problem_fields(MPCProblem):
        value = getattr(p, name)
        used = sp.used_when is None or bool(getattr(p, sp.used_when))
        if sp.stored == "array" or (sp.stored == "array if used" and used):
            arrays[name] = value
        elif sp.stored == "field" or (sp.stored == "field if used" and used):
            fields[name] = _json_value(value)
        elif sp.stored == "parts":
            more_arrays, more_fields = _PROBLEM_PARTS[name][0](value)
            arrays.update(more_arrays)
            fields.update(more_fields)
    return arrays, fields


def _problem_from(arrays, fields) -> MPCProblem:
    kwargs = {}
    for name, sp in problem_fields(MPCProblem):
        if name in _PROVENANCE:
            continue
        if sp.stored in ("array", "array if used"):
            if name in arrays:
                kwargs[name] = arrays[name]
        elif sp.stored in ("field", "field if used"):
            if name in fields:
                kwargs[name] = fields[name]
        else:
            kwargs[name] = _PROBLEM_PARTS[name][1](arrays, fields)
    p = MPCProblem(**kwargs)
    # provenance of computed parts, restored without computing them again
    for name in _PROVENANCE:
        object.__setattr__(p, name, fields.get(name))
    return p


def _qp_parts(qp: CondensedQP) -> tuple[dict, dict]:
    arrays = {k: getattr(qp, k) for k in ("H", "F", "G", "w", "E")}
    if qp.Phi is not None:
        arrays["Phi"], arrays["Gamma"] = qp.Phi, qp.Gamma
    if qp.state_only is not None:
        arrays["state_only.E0"], arrays["state_only.w0"] = qp.state_only
    if qp.sample_box is not None:
        arrays["sample_box.lo"], arrays["sample_box.hi"] = qp.sample_box
    if qp.output_map is not None:
        arrays["output_map"] = qp.output_map
    fields = dict(n_u=qp.n_u, row_labels=list(qp.row_labels), name=qp.name, source=qp.source,
                  has_problem=qp.problem is not None)
    if qp.n_slack:
        fields["n_slack"] = qp.n_slack
        if np.ndim(qp.slack_shift) == 0:
            fields["slack_shift"] = qp.slack_shift
        else:  # one per slack (state and output penalties differ)
            arrays["slack_shift"] = qp.slack_shift
    if qp.parameter_sizes != (("x", qp.n_theta),):
        fields["parameter_sizes"] = [list(p) for p in qp.parameter_sizes]
    if qp.problem is not None:
        p_arrays, p_fields = _problem_parts(qp.problem)
        arrays.update({f"problem.{k}": v for k, v in p_arrays.items()})
        fields["problem"] = p_fields
    return arrays, fields


def _qp_from(arrays, fields) -> CondensedQP:
    problem = None
    if fields["has_problem"]:
        problem = _problem_from({k[len("problem."):]: v for k, v in arrays.items() if k.startswith("problem.")},
                                fields["problem"])
    so = (arrays["state_only.E0"], arrays["state_only.w0"]) if "state_only.E0" in arrays else None
    box = (arrays["sample_box.lo"], arrays["sample_box.hi"]) if "sample_box.lo" in arrays else None
    return CondensedQP(H=arrays["H"], F=arrays["F"], G=arrays["G"], w=arrays["w"], E=arrays["E"], n_u=fields["n_u"],
                       Phi=arrays.get("Phi"), Gamma=arrays.get("Gamma"), problem=problem,
                       row_labels=tuple(fields["row_labels"]), state_only=so, name=fields["name"], sample_box=box,
                       source=fields["source"], output_map=arrays.get("output_map"),
                       n_slack=fields.get("n_slack", 0),
                       slack_shift=arrays["slack_shift"] if "slack_shift" in arrays else fields.get("slack_shift", 0.0),
                       parameter_sizes=tuple(tuple(p) for p in fields.get("parameter_sizes", ())))


def _network_parts(net: ImplicitNetwork) -> tuple[dict, dict]:
    q_arrays, q_fields = _qp_parts(net.qp)
    arrays = {f"qp.{k}": v for k, v in q_arrays.items()}
    arrays.update({k: getattr(net, k) for k in ("W", "Y", "b", "W_f", "Y_f", "alpha")})
    return arrays, dict(qp=q_fields)


def _network_from(arrays, fields) -> ImplicitNetwork:
    qp = _qp_from({k[3:]: v for k, v in arrays.items() if k.startswith("qp.")}, fields["qp"])
    return ImplicitNetwork(W=arrays["W"], Y=arrays["Y"], b=arrays["b"], W_f=arrays["W_f"], Y_f=arrays["Y_f"],
                           alpha=arrays["alpha"], qp=qp)


def _explicit_parts(ex) -> tuple[dict, dict]:
    """The implicit network, the construction's configuration (``get_config``) and every buffer."""
    n_arrays, n_fields = _network_parts(ex.net)
    arrays = {f"net.{k}": v for k, v in n_arrays.items()}
    arrays["kept_rows"] = ex.kept_rows
    arrays.update({f"buffer.{k}": v.detach().cpu().numpy() for k, v in ex.state_dict().items()})
    params, more = ex.get_config()
    params = dict(params, method=ex.method, prune=ex.pruned)
    arrays.update(more)
    selection = None if ex.selection is None else ex.selection.as_fields()
    fields = dict(net=n_fields, cls=type(ex).__name__, method=ex.method, depth=ex.depth,
                  dtype=str(ex._dtype).replace("torch.", ""), params=params, selection=selection)
    return arrays, fields


def _explicit_from(arrays, fields):
    """Rebuild the network's structure from its configuration, then load the saved weights into it."""
    torch = require("torch", "torch")
    from .. import explicit

    net = _network_from({k[4:]: v for k, v in arrays.items() if k.startswith("net.")}, fields["net"])
    params = fields["params"]
    cls = explicit.NETWORK_CLASSES.get(fields["cls"])
    if cls is None:
        raise FileFormatError(f"unknown explicit network class {fields['cls']!r}; known: "
                              f"{sorted(explicit.NETWORK_CLASSES)}")
    pruned = bool(params.get("prune"))
    qp = net.qp.with_rows(arrays["kept_rows"]) if pruned else net.qp
    ex = cls.from_config(net, qp, arrays["kept_rows"], fields["depth"], getattr(torch, fields["dtype"]), params,
                         arrays, pruned=pruned)
    saved = {k[len("buffer."):]: np.array(v) for k, v in arrays.items() if k.startswith("buffer.")}
    check_buffers({k: v.detach().cpu().numpy() for k, v in ex.state_dict().items()}, saved, net.qp)
    ex.load_state_dict({k: torch.from_numpy(v) for k, v in saved.items()})
    if fields.get("selection"):
        ex.selection = explicit.DepthSelection.from_fields(fields["selection"])
    return ex


def _ragged(parts: list[np.ndarray], width: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of different lengths as one concatenated array and the start offsets (length + 1)."""
    ptr = np.cumsum([0] + [p.shape[0] for p in parts]).astype(np.int64)
    data = np.concatenate(parts) if parts else np.zeros((0, *width))
    return data.reshape((-1, *width)), ptr


def _partition_parts(part: Partition) -> tuple[dict, dict]:
    """The QP, the domain and every region's arrays (ragged ones concatenated with offsets)."""
    q_arrays, q_fields = _qp_parts(part.qp)
    arrays = {f"qp.{k}": v for k, v in q_arrays.items()}
    arrays["domain.C"], arrays["domain.d"] = part.domain.C, part.domain.d
    R = part.regions
    n, n_z, n_U = part.qp.n_theta, part.qp.n_z, part.qp.n_U
    arrays["active"], arrays["active_ptr"] = _ragged([np.array(r.active, np.int64) for r in R], ())
    arrays["A"], arrays["row_ptr"] = _ragged([r.A for r in R], (n,))
    arrays["b"] = _ragged([r.b for r in R], ())[0]
    arrays["row_kind"] = _ragged([np.array([ROW_KINDS.index(k) for k in r.row_kind], np.int8) for r in R], ())[0]
    arrays["row_index"] = _ragged([r.row_index for r in R], ())[0]
    arrays["facet_kind"] = _ragged([np.array([FACET_KINDS.index(k) for k in r.facet_kind], np.int8) for r in R],
                                   ())[0]
    nb = [np.array(f, np.int64) for r in R for f in r.neighbours]
    arrays["neighbours"], arrays["neighbour_ptr"] = _ragged(nb, ())
    arrays["vertices"], arrays["vertex_ptr"] = _ragged([r.vertices for r in R], (n,))
    arrays["lambda_gain"] = _ragged([r.lambda_gain for r in R], (n,))[0]
    arrays["lambda_offset"] = _ragged([r.lambda_offset for r in R], ())[0]
    arrays["centre"] = np.array([r.centre for r in R]).reshape(-1, n)
    arrays["radius"] = np.array([r.radius for r in R], float)
    arrays["kkt_residual"] = np.array([r.kkt_residual for r in R], float)
    arrays["z_gain"] = np.array([r.z_gain for r in R]).reshape(-1, n_z, n)
    arrays["z_offset"] = np.array([r.z_offset for r in R]).reshape(-1, n_z)
    arrays["U_gain"] = np.array([r.U_gain for r in R]).reshape(-1, n_U, n)
    arrays["U_offset"] = np.array([r.U_offset for r in R]).reshape(-1, n_U)
    arrays["open.region"] = np.array([o.region for o in part.open_facets], np.int64)
    arrays["open.row"] = np.array([o.row for o in part.open_facets], np.int64)
    arrays["open.point"] = np.array([o.point for o in part.open_facets]).reshape(-1, n)
    fields = dict(qp=q_fields, complete=part.complete, status=part.status, reason=part.reason,
                  n_solves=part.n_solves, n_lps=part.n_lps, n_lower_dimensional=part.n_lower_dimensional,
                  n_ill_conditioned=part.n_ill_conditioned, rounds=part.rounds, elapsed=part.elapsed,
                  scale=part.scale)
    return arrays, fields


def _partition_from(arrays, fields) -> Partition:
    qp = _qp_from({k[3:]: v for k, v in arrays.items() if k.startswith("qp.")}, fields["qp"])
    ap, rp, vp, nbp = arrays["active_ptr"], arrays["row_ptr"], arrays["vertex_ptr"], arrays["neighbour_ptr"]
    n_u, regions = qp.n_u, []
    for j in range(ap.size - 1):
        rows, act = slice(rp[j], rp[j + 1]), slice(ap[j], ap[j + 1])
        nb = tuple(tuple(int(i) for i in arrays["neighbours"][nbp[f]:nbp[f + 1]]) for f in range(rp[j], rp[j + 1]))
        Ug, Uo = arrays["U_gain"][j], arrays["U_offset"][j]
        regions.append(Region(
            active=tuple(int(i) for i in arrays["active"][act]), A=arrays["A"][rows], b=arrays["b"][rows],
            row_kind=np.array(ROW_KINDS)[arrays["row_kind"][rows]], row_index=arrays["row_index"][rows],
            centre=arrays["centre"][j], radius=float(arrays["radius"][j]),
            vertices=arrays["vertices"][vp[j]:vp[j + 1]], z_gain=arrays["z_gain"][j], z_offset=arrays["z_offset"][j],
            U_gain=Ug, U_offset=Uo, u0_gain=Ug[:n_u], u0_offset=Uo[:n_u], lambda_gain=arrays["lambda_gain"][act],
            lambda_offset=arrays["lambda_offset"][act], facet_kind=np.array(FACET_KINDS)[arrays["facet_kind"][rows]],
            neighbours=nb, kkt_residual=float(arrays["kkt_residual"][j])))
    open_facets = tuple(OpenFacet(region=int(r), row=int(f), point=np.array(p)) for r, f, p in
                        zip(arrays["open.region"], arrays["open.row"], arrays["open.point"], strict=True))
    counts = {k: fields[k] for k in ("n_solves", "n_lps", "n_lower_dimensional", "n_ill_conditioned", "rounds")}
    return Partition(regions=tuple(regions), qp=qp, domain=Polytope(arrays["domain.C"], arrays["domain.d"]),
                     complete=fields["complete"], status=fields["status"], reason=fields["reason"],
                     open_facets=open_facets, elapsed=fields["elapsed"], scale=fields["scale"], **counts)


def _is_exact(obj) -> bool:
    """``obj`` is an exact network (:class:`~mpc2nn.explicit.ExactNetwork`; torch is loaded if it is one)."""
    if not isinstance(obj, ExplicitLaw) or loaded_torch() is None:
        return False
    from .. import explicit

    return isinstance(obj, explicit.ExactNetwork)


def _exact_parts(ex) -> tuple[dict, dict]:
    """The partition, the lattice (terms, groups and the witness cells) and every buffer of the network."""
    p_arrays, p_fields = _partition_parts(ex.partition)
    arrays = {f"partition.{k}": v for k, v in p_arrays.items()}
    arrays.update({f"buffer.{k}": v.detach().cpu().numpy() for k, v in ex.state_dict().items()})
    lat = ex.lattice
    arrays["lattice.gain"], arrays["lattice.offset"] = lat.gain, lat.offset
    for j, o in enumerate(lat.outputs):
        arrays[f"lattice.{j}.groups"], arrays[f"lattice.{j}.group_ptr"] = _ragged(
            [np.asarray(g, np.int64) for g in o.groups], ())
        for name in ("cell_region", "cell_group", "path_ptr", "path_A", "path_b"):
            arrays[f"lattice.{j}.{name}"] = getattr(o, name)
    fields = dict(partition=p_fields, output=ex.output, dtype=str(ex._dtype).replace("torch.", ""),
                  orientation=[o.orientation for o in lat.outputs], method=ex.method, depth=ex.depth)
    return arrays, fields


def _exact_from(arrays, fields):
    """Rebuild the partition and the lattice, then the network from its saved buffers (bit for bit)."""
    torch = require("torch", "torch")
    from .. import explicit

    part = _partition_from({k[len("partition."):]: v for k, v in arrays.items() if k.startswith("partition.")},
                           fields["partition"])
    outs = []
    for j, orient in enumerate(fields["orientation"]):
        g, ptr = arrays[f"lattice.{j}.groups"], arrays[f"lattice.{j}.group_ptr"]
        outs.append(LatticeOutput(orientation=orient, groups=tuple(g[ptr[k]:ptr[k + 1]] for k in range(ptr.size - 1)),
                                  **{name: arrays[f"lattice.{j}.{name}"] for name in
                                     ("cell_region", "cell_group", "path_ptr", "path_A", "path_b")}))
    lat = Lattice(gain=arrays["lattice.gain"], offset=arrays["lattice.offset"], output=fields["output"],
                  outputs=tuple(outs))
    buffers = {k[len("buffer."):]: v for k, v in arrays.items() if k.startswith("buffer.")}
    return explicit.ExactNetwork.from_buffers(part, lat, buffers, getattr(torch, fields["dtype"]))


def is_explicit(obj) -> bool:
    """``obj`` is an explicit network that the file format stores (a pure Linear+ReLU one)."""
    return isinstance(obj, ExplicitLaw) and obj.exportable


#: The savable kinds by name: ``(is this kind?, to_parts, from_parts)``.
KINDS = {
    "MPCProblem": (lambda obj: isinstance(obj, MPCProblem), _problem_parts, _problem_from),
    "CondensedQP": (lambda obj: isinstance(obj, CondensedQP), _qp_parts, _qp_from),
    "ImplicitNetwork": (lambda obj: isinstance(obj, ImplicitNetwork), _network_parts, _network_from),
    "ExactNetwork": (_is_exact, _exact_parts, _exact_from),  # before ExplicitNetwork: it is an explicit law too
    "ExplicitNetwork": (is_explicit, _explicit_parts, _explicit_from),
    "Partition": (lambda obj: isinstance(obj, Partition), _partition_parts, _partition_from),
}
