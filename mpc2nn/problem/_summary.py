"""A one-line description of an :class:`~mpc2nn.MPCProblem` (its ``repr``): sizes, sampling time, what is bounded."""

from __future__ import annotations

import numpy as np

__all__ = ["summary"]


def summary(p) -> str:
    """``MPCProblem('name': n_x=2, n_u=1, N=20, dt=1 s; bounds on u, x; P dare)``: what the problem holds."""
    outputs = f", n_y={p.n_y}" if p.C is not None else ""
    sizes = f"{p.name!r}: n_x={p.n_x}, n_u={p.n_u}{outputs}, N={p.horizon}"
    parts = [sizes + ("" if p.dt is None else f", dt={p.dt:g} s")]
    bounds = [s for s, lo, hi in (("u", p.u_min, p.u_max), ("x", p.x_min, p.x_max),
                                 ("du", p.du_min, p.du_max),
                                 ("y", p.y_min, p.y_max)) if lo is not None
              and (np.isfinite(lo).any() or np.isfinite(hi).any())]
    if bounds:
        parts.append("bounds on " + ", ".join(bounds))
    more = [w for w, on in (("stage constraints", bool(p.constraints)),
                            ("terminal " + ("set lqr" if p.terminal_set else "constraint"),
                             p.terminal_constraint is not None),
                            ("soft states", p.soft), ("soft outputs", p.soft_outputs),
                            ("output weight", p.has_output_weight), ("rate weight", p.has_rate_weight),
                            ("tracking", p.tracking),
                            (f"blocks {list(p.move_blocking or ())}", p.has_move_blocking)) if on]
    if more:
        parts.append(", ".join(more))
    parts.append(f"P {p.terminal_weight_source}")
    return f"MPCProblem({'; '.join(parts)})"
