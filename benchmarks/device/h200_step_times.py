"""Measure real Llama-3.1-8B step times on a GPU, to check the estimator's kernel data.

Runs on the lent GPU machine only (PyTorch + CUDA), never in tests. A minimal Llama-3.1-8B
forward in plain PyTorch — cuBLAS GEMMs, FlashAttention through SDPA (GQA), RMSNorm, SiLU,
random bf16 weights (timing does not depend on the values) — captured in a CUDA graph and
replayed, as vLLM runs decode steps, so Python overhead is not measured:

* prefill: one prompt of ``isl`` tokens (causal attention), no KV history;
* decode: ``batch`` sequences, one new token each, attending to ``kv`` cached tokens.

Writes ``$OUT/h200_llama31_8b_steps.csv`` (phase, batch, tokens, kv, measured_ms); the
comparison with aiconfigurator's predictions runs on the CPU side:
``benchmarks/estimator_vs_gpu.py``.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

L, H, NH, NKV, INTER, VOCAB = 32, 4096, 32, 8, 14336, 128256  # Llama-3.1-8B
HD = H // NH
DT = torch.bfloat16
dev = torch.device("cuda")


def weights() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator(device=dev).manual_seed(0)

    def w(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, device=dev, dtype=DT, generator=g) * 0.02)

    return [{"qkv": w(H, (NH + 2 * NKV) * HD), "o": w(NH * HD, H), "gu": w(H, 2 * INTER),
             "d": w(INTER, H), "n1": torch.ones(H, device=dev, dtype=DT),
             "n2": torch.ones(H, device=dev, dtype=DT)} for _ in range(L)]


def rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), w, 1e-5)


def layer(x: torch.Tensor, p: dict[str, torch.Tensor], k_cache: torch.Tensor | None,
          v_cache: torch.Tensor | None, causal: bool) -> torch.Tensor:
    b, t, _ = x.shape
    qkv = rms(x, p["n1"]) @ p["qkv"]
    q, k, v = qkv.split([NH * HD, NKV * HD, NKV * HD], dim=-1)
    q = q.view(b, t, NH, HD).transpose(1, 2)
    k = k.view(b, t, NKV, HD).transpose(1, 2)
    v = v.view(b, t, NKV, HD).transpose(1, 2)
    if k_cache is not None and v_cache is not None:  # write the new token in place, as vLLM
        k_cache[:, :, -1:] = k
        v_cache[:, :, -1:] = v
        k, v = k_cache, v_cache
    a = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    x = x + a.transpose(1, 2).reshape(b, t, NH * HD) @ p["o"]
    gate, up = (rms(x, p["n2"]) @ p["gu"]).chunk(2, dim=-1)
    return x + (F.silu(gate) * up) @ p["d"]


def graph_ms(fn, reps: int = 20) -> float:  # type: ignore[no-untyped-def]
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        g.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    out = os.environ.get("OUT", ".")
    ws = weights()
    lm_head = torch.randn(H, VOCAB, device=dev, dtype=DT) * 0.02
    rows = []
    with torch.inference_mode():
        for isl in (128, 512, 1024, 2048, 4096):
            x = torch.randn(1, isl, H, device=dev, dtype=DT)

            def prefill(x: torch.Tensor = x) -> torch.Tensor:
                h = x
                for p in ws:
                    h = layer(h, p, None, None, causal=True)
                return rms(h[:, -1:], ws[0]["n1"]) @ lm_head

            rows.append(("prefill", 1, isl, 0, graph_ms(prefill)))
            print(rows[-1], flush=True)
        for batch in (1, 8, 32, 64, 128):
            for kv in (512, 2048):
                x = torch.randn(batch, 1, H, device=dev, dtype=DT)
                kc = torch.randn(batch, NKV, kv + 1, HD, device=dev, dtype=DT)
                vc = torch.randn(batch, NKV, kv + 1, HD, device=dev, dtype=DT)

                def decode(x: torch.Tensor = x, kc: torch.Tensor = kc,
                           vc: torch.Tensor = vc) -> torch.Tensor:
                    h = x
                    for p in ws:
                        h = layer(h, p, kc, vc, causal=False)
                    return rms(h, ws[0]["n1"]) @ lm_head

                rows.append(("decode", batch, 1, kv, graph_ms(decode)))
                print(rows[-1], flush=True)
                del kc, vc
                torch.cuda.empty_cache()
    path = Path(out) / "h200_llama31_8b_steps.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "batch", "tokens", "kv", "measured_ms"])
        w.writerows(rows)
    print("gpu", torch.cuda.get_device_name(), "torch", torch.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()
