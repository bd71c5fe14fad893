"""The estimator's step times against real GPU step times measured in this project.

``benchmarks/data/h200_llama31_8b_steps.csv`` was measured on an NVIDIA H200 (PyTorch
2.11, CUDA 13) by ``benchmarks/device/h200_step_times.py``: a plain-PyTorch Llama-3.1-8B
(cuBLAS GEMMs, FlashAttention via SDPA) under CUDA graphs. This prints, for each measured
step, aiconfigurator's prediction as the estimator uses it (``h200_sxm``, vLLM, tp 1) and the
ratio predicted / measured. Plain PyTorch has no fused RMSNorm/SiLU kernels, so ratios a
little below 1 are expected; far from 1 would mean the kernel data does not fit this GPU.

Run: ``.venv/bin/python benchmarks/estimator_vs_gpu.py``
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from routerwise.profiles.aic_steps import step_times
from routerwise.spec.catalog import get_model

DATA = Path(__file__).resolve().parent / "data" / "h200_llama31_8b_steps.csv"


def main() -> None:
    measured = pd.read_csv(DATA)
    steps = step_times(get_model("llama-3.1-8b"), "h200_sxm", 1)
    print(f"{'phase':>8} {'batch':>5} {'tokens':>6} {'kv':>5} {'measured ms':>11} "
          f"{'estimated ms':>12} {'ratio':>6}")
    ratios: dict[str, list[float]] = {"prefill": [], "decode": []}
    for row in measured.itertuples():
        if row.phase == "prefill":
            est = steps.mixed_ms([(int(row.tokens), int(row.tokens))], 0, 0)
        else:
            est = steps.decode_ms(int(row.batch), int(row.kv))
        ratio = est / float(row.measured_ms)
        ratios[str(row.phase)].append(ratio)
        print(f"{row.phase:>8} {row.batch:>5} {row.tokens:>6} {row.kv:>5} "
              f"{row.measured_ms:>11.2f} {est:>12.2f} {ratio:>6.2f}")
    for phase, values in ratios.items():
        print(f"{phase}: estimated / measured, median {statistics.median(values):.2f} "
              f"(range {min(values):.2f}–{max(values):.2f})")


if __name__ == "__main__":
    main()
