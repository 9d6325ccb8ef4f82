"""Each savable kind as named arrays and JSON fields, and back."""

from __future__ import annotations

import numpy as np

from .._checks import require
from ..exceptions import FileFormatError
from ..implicit import ImplicitNetwork
from ..interfaces import ExplicitLaw
from ..problem import MPCProblem, Polytope, StageConstraint, problem_fields
from ..qp import CondensedQP

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
        fields["n_slack"], fields["slack_shift"] = qp.n_slack, qp.slack_shift
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
                       n_slack=fields.get("n_slack", 0), slack_shift=fields.get("slack_shift", 0.0),
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
    state = {k[len("buffer."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
             if k.startswith("buffer.")}
    ex.load_state_dict(state)
    if fields.get("selection"):
        ex.selection = explicit.DepthSelection.from_fields(fields["selection"])
    return ex


def is_explicit(obj) -> bool:
    """``obj`` is an explicit network that the file format stores (a pure Linear+ReLU one)."""
    return isinstance(obj, ExplicitLaw) and obj.exportable


#: The savable kinds by name: ``(is this kind?, to_parts, from_parts)``.
KINDS = {
    "MPCProblem": (lambda obj: isinstance(obj, MPCProblem), _problem_parts, _problem_from),
    "CondensedQP": (lambda obj: isinstance(obj, CondensedQP), _qp_parts, _qp_from),
    "ImplicitNetwork": (lambda obj: isinstance(obj, ImplicitNetwork), _network_parts, _network_from),
    "ExplicitNetwork": (is_explicit, _explicit_parts, _explicit_from),
}
