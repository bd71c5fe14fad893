"""The plan's two figures (PNG): the quality of every evaluated feasible setup, sorted, with
the baselines and the plan marked; and the chosen setup's latency curves with the operating
points. matplotlib is imported on use (Agg backend), never at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from routerwise.latency.curve import LatencyCurve


def quality_spread_png(path: Path, qualities: Sequence[float],
                       baselines: Mapping[str, float | None], chosen: float | None,
                       title: str) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    q = np.sort(np.asarray(qualities))
    ax.plot(np.arange(len(q)), q, ".", ms=3, color="tab:gray", label="evaluated setups")
    colors = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple"])
    for name, value in baselines.items():
        color = next(colors)
        if value is not None:
            ax.axhline(value, ls="--", lw=1, color=color, label=f"{name} {value:.3f}")
    if chosen is not None:
        ax.axhline(chosen, lw=2, color="tab:red", label=f"RouterWise {chosen:.3f}")
    ax.set_xlabel("feasible setups, sorted by quality")
    ax.set_ylabel("predicted quality (mean score)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def latency_curves_png(path: Path, curves: Mapping[str, LatencyCurve],
                       points: Mapping[str, tuple[float, float]], slo_ms: float,
                       title: str) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, curve in curves.items():
        rates = np.linspace(0, curve.capacity_rps_, 200)
        (line,) = ax.plot(rates, curve(rates), label=name)
        if name in points:
            r, t = points[name]
            ax.plot([r], [t], "o", color=line.get_color(), ms=7)
    ax.axhline(slo_ms, ls=":", color="black", label=f"SLO {slo_ms:g} ms (fleet mean)")
    ax.set_xlabel("rate routed to the model (req/s)")
    ax.set_ylabel("mean TTFT (ms)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
