"""``routerwise catalog``: list the GPU and model catalogs."""

from __future__ import annotations

import typer
from rich.table import Table

from routerwise.cli._common import console, print_json
from routerwise.spec.catalog import GPU_CATALOG, MODEL_CATALOG, valid_tps


def _gpu_table() -> Table:
    table = Table(title="GPUs")
    for col in ("name", "memory GiB", "bf16 TFLOPS", "HBM TB/s", "NVLink GB/s", "aiconfigurator"):
        table.add_column(col)
    for g in GPU_CATALOG.values():
        table.add_row(g.name, f"{g.memory_gib:g}", f"{g.bf16_tflops:g}",
                      f"{g.hbm_bandwidth_tbps:g}", f"{g.nvlink_gbps:g}", g.aic_system)
    return table


def _model_table() -> Table:
    table = Table(title="Models")
    for col in ("id", "params B", "layers", "hidden", "heads/kv", "inter", "vocab", "tp", "source"):
        table.add_column(col)
    for m in MODEL_CATALOG.values():
        table.add_row(
            m.id, f"{m.params_b:.2f}", str(m.num_layers), str(m.hidden_size),
            f"{m.num_attention_heads}/{m.num_kv_heads}", str(m.intermediate_size),
            str(m.vocab_size), ",".join(map(str, valid_tps(m))), m.hf_name,
        )
    return table


def catalog(
    json_out: bool = typer.Option(False, "--json", help="Print the catalogs as JSON."),
) -> None:
    """List the GPU types and models RouterWise knows."""
    if json_out:
        print_json({
            "gpus": [
                {"name": g.name, "memory_gib": g.memory_gib, "bf16_tflops": g.bf16_tflops,
                 "hbm_bandwidth_tbps": g.hbm_bandwidth_tbps, "nvlink_gbps": g.nvlink_gbps,
                 "aic_system": g.aic_system, "source": g.source}
                for g in GPU_CATALOG.values()
            ],
            "models": [
                {"id": m.id, "hf_name": m.hf_name, "params_b": round(m.params_b, 3),
                 "num_layers": m.num_layers, "hidden_size": m.hidden_size,
                 "num_attention_heads": m.num_attention_heads, "num_kv_heads": m.num_kv_heads,
                 "intermediate_size": m.intermediate_size, "vocab_size": m.vocab_size,
                 "valid_tps": list(valid_tps(m)), "source": m.source, "notes": m.notes}
                for m in MODEL_CATALOG.values()
            ],
        })
        return
    console.print(_gpu_table())
    console.print(_model_table())
