"""Simulate stage — interference between engine instances that share a GPU under MPS.

The planner's latency curves are profiles of one instance *alone* at its MPS share: the SM
cap is charged (``profiles/mps.py``), but a co-runner on the same GPU is not. MPS partitions
SMs, not memory bandwidth, L2 or the memory controllers, so two instances that are busy at
once slow each other's bandwidth-bound work (decode: weights and KV reads). The paper
ignores this; the simulator charges it with an explicit, overridable model.

Model (``BandwidthContention``; every parameter is a field). A step of instance A whose
compute-bound fraction is ``f_A`` (``MpsModel.compute_fraction`` of its tokens: decode
steps ≈ bandwidth-bound, large prefill chunks ≈ compute-bound) takes ::

    t = t_alone · (1 + bandwidth · (1 − f_A) · Σ_j (1 − f_j) + compute · f_A · Σ_j f_j)

where ``j`` runs over the *busy* co-runners on A's most contended GPU (a tensor-parallel
step waits for its slowest rank), each with the compute fraction of its current step.
``bandwidth`` is the fractional slowdown of a fully bandwidth-bound step next to one fully
bandwidth-bound busy co-runner; ``compute`` the same for compute-bound work (0 by default:
MPS gives each client its own SMs, and the SM cap is already in the profile).

Where the default comes from: two vLLM instances on one A100 at 60% SMs / 50% memory each
showed TPOT +19.5%, TTFT +1.4%, throughput −7.5% (the public measurement cited in issue 9).
Read as *co-located against the same instance alone at its share* (the profile already
charges the SM cap), ``bandwidth = 0.28`` reproduces the TPOT figure for two Mistral-7B
instances (tp1, 60%, 512 → 256 tokens, half load each) on an A100; the same run then gives
TTFT +6% and burst throughput −2% (one parameter cannot fit all three; TPOT is the
bandwidth-bound figure this model is about). Read as *against a whole dedicated GPU*, the
MPS share model alone already charges TTFT ×1.6 and TPOT ×1.26 — more than measured — so
that reading leaves no room for contention and says the SM-cap model is pessimistic for
prefill. ``benchmarks/interference.py`` prints both readings. It is one measurement on one
pair of models: re-fit from your own (``--interference bandwidth:bandwidth=X,compute=Y``).

The model itself (``InterferenceModel``, ``BandwidthContention``, the step wrappers) lives in
``profiles/interference.py``, shared with the profile estimator, which charges the same
contention to every shape below a whole GPU (one busy co-runner assumed); this module
parses the command line's choice.

Pluggable (docs/architecture.md §6.5): ``InterferenceModel`` protocol + ``INTERFERENCE_MODELS``
registry (``none``, ``bandwidth``).
"""

from __future__ import annotations

from collections.abc import Callable

from routerwise.errors import InputError
from routerwise.profiles.interference import (
    DEFAULT_INTERFERENCE,
    BandwidthContention,
    InterferenceModel,
    NoInterference,
)

__all__ = ["DEFAULT_INTERFERENCE", "INTERFERENCE_MODELS", "BandwidthContention",
           "InterferenceModel", "NoInterference", "parse_interference"]


def _kwargs(arg: str, allowed: tuple[str, ...], name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (p.strip() for p in arg.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            raise InputError(f"--interference {name}:{arg}: {part!r} is not KEY=VALUE with KEY "
                             f"in {', '.join(allowed)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise InputError(f"--interference {name}:{arg}: {value!r} is not a number") from None
    return out


def _none(arg: str) -> InterferenceModel:
    if arg:
        raise InputError(f"--interference none takes no parameters (got none:{arg})")
    return NoInterference()


def _bandwidth(arg: str) -> InterferenceModel:
    return BandwidthContention(**_kwargs(arg, ("bandwidth", "compute"), "bandwidth"))


#: Interference model name → parser of ``KEY=VALUE,...`` after ``NAME:``.
INTERFERENCE_MODELS: dict[str, Callable[[str], InterferenceModel]] = {
    "none": _none,
    "bandwidth": _bandwidth,
}


def parse_interference(text: str) -> InterferenceModel:
    """``none``, ``bandwidth`` or ``bandwidth:bandwidth=0.2,compute=0.01``."""
    name, _, arg = text.partition(":")
    parser = INTERFERENCE_MODELS.get(name.strip().lower())
    if parser is None:
        raise InputError(f"--interference {text!r}: unknown model; use one of "
                         f"{', '.join(INTERFERENCE_MODELS)}")
    return parser(arg.strip())
