"""Synthetic step models for fast, exact tests (no aiconfigurator)."""

from __future__ import annotations


class FixedSteps:
    """Decode steps take ``decode`` ms, steps with prefill ``mixed`` ms (whatever the batch)."""

    def __init__(self, decode: float = 20.0, mixed: float = 30.0) -> None:
        self.decode, self.mixed = decode, mixed

    def decode_ms(self, seqs: int, kv: int) -> float:
        return self.decode

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        return self.mixed


class LinearSteps:
    """Step time grows with tokens and KV (like tests/profiles/test_engine_sim.py)."""

    def decode_ms(self, seqs: int, kv: int) -> float:
        return 5.0 + 0.01 * seqs + 0.001 * kv * seqs / 100

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        return 5.0 + 0.01 * (seqs + sum(c for c, _ in chunks)) + 0.001 * kv * seqs / 100
