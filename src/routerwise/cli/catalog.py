"""``routerwise catalog``: list the GPU and model catalogs."""

from __future__ import annotations

import typer
from rich.table import Table

from routerwise.cli._common import console, print_json
from routerwise.spec.catalog import GPU_CATALOG, MODEL_CATALOG, valid_tps


def _id_column(table: Table, header: str, ids: list[str]) -> None:
    """A column of ids that rich may never wrap or cut (``COLUMNS=80`` must show them whole)."""
    table.add_column(header, no_wrap=True, min_width=max(map(len, ids)))


def _table(title: str) -> Table:
    """No outer border: four more columns for the values at 80 columns."""
    return Table(title=title, show_edge=False)


def _gpu_table() -> Table:
    table = _table("GPUs")
    _id_column(table, "name", [g.name for g in GPU_CATALOG.values()])
    for col in ("memory GiB", "bf16 TFLOPS", "HBM TB/s", "NVLink GB/s", "aic system"):
        table.add_column(col, justify="right" if "/" in col or "GiB" in col or "TF" in col
                         else "left")
    for g in GPU_CATALOG.values():
        table.add_row(g.name, f"{g.memory_gib:g}", f"{g.bf16_tflops:g}",
                      f"{g.hbm_bandwidth_tbps:g}", f"{g.nvlink_gbps:g}", g.aic_system)
    return table


def _model_table() -> Table:
    table = _table("Models")
    _id_column(table, "id", [m.id for m in MODEL_CATALOG.values()])
    for col in ("params (B)", "layers", "hidden", "q/kv heads", "ffn", "vocab", "tp"):
        table.add_column(col, justify="left" if col == "tp" else "right", no_wrap=col == "tp")
    for m in MODEL_CATALOG.values():
        table.add_row(
            m.id, f"{m.params_b:.2f}", str(m.num_layers), str(m.hidden_size),
            f"{m.num_attention_heads}/{m.num_kv_heads}", str(m.intermediate_size),
            str(m.vocab_size), ",".join(map(str, valid_tps(m))),
        )
    return table


def _source_table() -> Table:
    """Where each model's architecture numbers come from (its Hugging Face config)."""
    table = _table("Model sources")
    _id_column(table, "id", [m.id for m in MODEL_CATALOG.values()])
    table.add_column("Hugging Face config", overflow="fold")
    for m in MODEL_CATALOG.values():
        table.add_row(m.id, m.hf_name)
    return table


def catalog(
    json_out: bool = typer.Option(False, "--json", metavar="", help="Print the catalogs as JSON."),
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
    console.print(_source_table())
