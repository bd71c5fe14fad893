"""Stage 1 — a picture of profile tables: latency statistics against arrival rate.

Inputs: a ``ProfileTable``; output: a PNG file. matplotlib (Agg backend) is imported only
when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path

from routerwise.profiles.table import ProfileTable

_STATS = (("ttft_mean_ms", "TTFT mean"), ("ttft_p90_ms", "TTFT p90"), ("tpot_mean_ms", "TPOT mean"))


def plot_profile(table: ProfileTable, path: Path) -> None:
    """Draw TTFT (mean, p90) and TPOT against rate for every model of ``table``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = table.to_frame()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for model in table.models:
        sub = frame[frame["model"] == model].sort_values("rate_rps")
        for col, label in _STATS:
            if col not in sub.columns:
                continue
            ax = axes[1] if col.startswith("tpot") else axes[0]
            ax.plot(sub["rate_rps"], sub[col], marker="o", label=f"{model} {label}")
    axes[0].set(xlabel="rate (requests/s)", ylabel="TTFT (ms)", title="Time to first token")
    axes[1].set(xlabel="rate (requests/s)", ylabel="TPOT (ms)", title="Time per output token")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
