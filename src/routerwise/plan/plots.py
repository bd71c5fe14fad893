"""The plan's two figures (PNG): the quality of every evaluated feasible setup, sorted, with
the baselines and the plan marked; and the chosen setup's latency curves with the operating
points. matplotlib is imported on use (Agg backend), never at import time.

Readability rules: a baseline equal to the plan is still drawn (dashed over the plan's solid
line, named in the legend with its value); latency uses a log axis when the curves span
more than a decade, so a 30 ms curve is readable beside a 3 s one; an infeasible plan's
figure says so in large type; legends name each deployment (``llama-3.1-8b 1×tp4@60%``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routerwise.latency.curve import LatencyCurve

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")


def _pyplot() -> Any:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def quality_spread_png(path: Path, qualities: Sequence[float],
                       baselines: Mapping[str, float | None], chosen: float | None,
                       title: str, *, infeasible: bool = False) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    q = np.sort(np.asarray(qualities, dtype=float))
    if len(q):
        ax.plot(np.arange(len(q)), q, ".", ms=3, color="tab:gray",
                label=f"{len(q)} feasible setups solved")
    if chosen is not None:
        ax.axhline(chosen, lw=3, color="tab:red", alpha=0.6, label=f"RouterWise {chosen:.4f}")
    for (name, value), color in zip(baselines.items(), _COLORS, strict=False):
        if value is None:
            ax.plot([], [], " ", label=f"{name}: infeasible")
            continue
        same = chosen is not None and abs(value - chosen) < 5e-5
        ax.axhline(value, ls=(0, (4, 3)), lw=1.5, color=color,
                   label=f"{name} {value:.4f}" + (" (= plan)" if same else ""))
    if infeasible:
        ax.text(0.5, 0.5, "INFEASIBLE: no setup meets the SLO", transform=ax.transAxes,
                ha="center", va="center", fontsize=16, color="tab:red", weight="bold")
    ax.set_xlabel("feasible setups, sorted by quality")
    ax.set_ylabel("quality (mean score of the routing)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _use_log_scale(curves: Mapping[str, LatencyCurve]) -> bool:
    values = np.concatenate([c.values_ for c in curves.values()]) if curves else np.ones(1)
    positive = values[values > 0]
    return bool(len(positive) and positive.max() / positive.min() > 10)


def latency_curves_png(path: Path, curves: Mapping[str, LatencyCurve],
                       points: Mapping[str, tuple[float, float]], slo_ms: float,
                       title: str, labels: Mapping[str, str] | None = None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, curve in curves.items():
        rates = np.linspace(0, curve.capacity_rps_, 200)
        label = (labels or {}).get(name, name) + f" (curve to {curve.capacity_rps_:.3g} req/s)"
        (line,) = ax.plot(rates, curve(rates), label=label)
        if name in points:
            r, t = points[name]
            ax.plot([r], [t], "o", color=line.get_color(), ms=7)
    ax.axhline(slo_ms, ls=":", color="black", label=f"SLO {slo_ms:g} ms (fleet mean)")
    if _use_log_scale(curves):
        ax.set_yscale("log")
    ax.set_xlabel("rate routed to the model (req/s); dots: planned operating points")
    ax.set_ylabel("mean TTFT (ms)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
