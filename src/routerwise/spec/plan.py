"""Stage 0 — the plan contract: a frozen, typed ``Plan`` and its file ``plan.json``.

Everything after planning (``route --plan``, the simulator, the gateway, deployment files)
reads a plan through :func:`load_plan`. The same frozen dataclasses are the core type and,
through a pydantic ``TypeAdapter``, the file format: :func:`plan_json_schema` is what
``routerwise schema plan`` prints, and a file with a missing key, an unknown key or another
``plan_version`` gets an error naming the file and the field.

Units: rates in requests/s, times in ms, shares and fractions in [0, 1], qualities in
[0, 1]. Non-finite numbers are written as ``null``. Every quality says what it was computed
on (``score_source``: ``predicted`` / ``derived`` scores, or the ``oracle`` labels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from routerwise.errors import InputError
from routerwise.spec.core import validation_lines
from routerwise.spec.deployment import Deployment, Instance, Setup, setup_from_instances
from routerwise.spec.workload import ScoreSource

if TYPE_CHECKING:
    from pydantic import TypeAdapter

#: Bumped on any change a reader must know about; readers reject other versions.
PLAN_VERSION = 2
PLAN_FILE = "plan.json"
PROFILES_FILE = "profiles.csv"
_EDGE = ConfigDict(extra="forbid")
OptFloat = float | None
OptInt = int | None


def _d(text: str) -> Any:
    return Field(description=text)


@dataclass(frozen=True, slots=True)
class SloTarget:
    __pydantic_config__ = _EDGE
    metric: Annotated[Literal["ttft"], _d("Latency metric (the planner optimises TTFT).")]
    stat: Annotated[Literal["mean"], _d("Statistic over requests (fleet-wide mean).")]
    target_ms: Annotated[float, Field(gt=0, description="Fleet mean TTFT target in ms.")]
    per_model_max_ms: Annotated[OptFloat, _d("Optional bound on every model's own mean TTFT.")]


@dataclass(frozen=True, slots=True)
class PoolInfo:
    __pydantic_config__ = _EDGE
    gpu_type: Annotated[str, _d("GPU type of the pool's GPUs.")]
    first_gpu: Annotated[int, Field(ge=0, description="Its first GPU id.")]
    num_gpus: Annotated[int, Field(ge=1, description="GPUs in the pool (ids in order).")]
    gpus_per_node: Annotated[int, Field(ge=1, description="GPUs per node (tp stays inside).")]


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    __pydantic_config__ = _EDGE
    gpu_type: Annotated[str, _d("GPU type of every GPU; 'mixed' with pools of several.")]
    num_gpus: Annotated[int, Field(ge=1, description="GPUs in the cluster.")]
    gpus_per_node: Annotated[int, Field(ge=1, description="GPUs per node (tp stays inside; "
                                                        "with pools, the largest).")]
    pools: Annotated[tuple[PoolInfo, ...], _d("Node pools of a mixed cluster, GPU ids in "
                                              "order (empty: one GPU type).")] = ()

    @property
    def mixed(self) -> bool:
        return len({p.gpu_type for p in self.pools}) > 1


@dataclass(frozen=True, slots=True)
class Quality:
    __pydantic_config__ = _EDGE
    predicted: Annotated[OptFloat, _d("Mean score of the chosen routing on the scores it was "
                                      "solved on (an oracle's when score_source is oracle).")]
    truth: Annotated[OptFloat, _d("The chosen routing scored on outcome labels, when the "
                                  "workload has labels distinct from the scores.")]
    score_source: Annotated[ScoreSource, _d("What the routing was solved on: predicted, "
                                            "derived (simulated predictor) or oracle (the "
                                            "outcome labels themselves: an upper bound).")]
    note: Annotated[str, _d("How to read these numbers.")]


@dataclass(frozen=True, slots=True)
class Routing:
    __pydantic_config__ = _EDGE
    prices: Annotated[dict[str, OptFloat], _d("Dual price per model (null: not deployed); a "
                                               "prompt goes to argmax score − price.")]
    fractions: Annotated[dict[str, float], _d("Share of requests routed to each model.")]
    tie_temperature: Annotated[float, _d("Softmax temperature splitting exact ties.")]
    multiplier_per_ms: Annotated[OptFloat, _d("The SLO's Lagrange multiplier β.")]


@dataclass(frozen=True, slots=True)
class CurveLengths:
    __pydantic_config__ = _EDGE
    basis: Annotated[Literal["workload", "routed", "measured"], _d(
        "What the model's latency curve was estimated with: the workload's length pool, "
        "the prompts this plan routes to it (the plan's length fixed point), or a measured "
        "profile (lengths unknown to the plan).")]
    curve_input_tokens_mean: Annotated[OptFloat, _d("Mean prompt length (tokens) of the "
                                                    "curve's estimate (null: measured).")]
    curve_output_tokens_mean: Annotated[OptFloat, _d("Mean output length (tokens) of the "
                                                     "curve's estimate (null: measured).")]
    routed_input_tokens_mean: Annotated[float, _d("Mean prompt length (tokens) of the "
                                                  "requests the routing sends the model.")]
    routed_output_tokens_mean: Annotated[float, _d("Their mean output length (tokens).")]
    curve_replicas: Annotated[int, Field(ge=1, description=(
        "Replicas the curve was estimated with behind least-outstanding-requests balancing, "
        "as the gateway balances them (1: one instance, its rates scaled by the replicas "
        "as an even split)."))] = 1


@dataclass(frozen=True, slots=True)
class ModelLoad:
    __pydantic_config__ = _EDGE
    deployment: Annotated[str | None, _d("e.g. 1×tp4@60%; null when not deployed.")]
    rate_rps: Annotated[float, _d("Requests/s routed to the model.")]
    ttft_mean_ms: Annotated[OptFloat, _d("Predicted mean TTFT at that rate.")]
    capacity_rps: Annotated[OptFloat, _d("Saturation throughput of all replicas: the first "
                                         "profile rate found saturated, else the estimator's "
                                         "saturation estimate, else the last measured rate. "
                                         "Its latency curve ends below it.")]
    utilisation: Annotated[OptFloat, _d("rate_rps / capacity_rps (< 1 in every plan built "
                                        "from estimates).")]
    lengths: Annotated[CurveLengths | None, _d(
        "Token lengths behind its curve and those routed to it (null: not deployed, or a "
        "plan written before this field).")] = None


@dataclass(frozen=True, slots=True)
class Prediction:
    __pydantic_config__ = _EDGE
    ttft_mean_ms: Annotated[OptFloat, _d("Fleet mean TTFT of the chosen routing.")]
    per_model: Annotated[dict[str, ModelLoad], _d("Load and latency per model.")]
    convexified: Annotated[bool, _d("A curve was replaced by its convex envelope.")]
    length_rounds: Annotated[int, Field(ge=0, description=(
        "Rounds of the length fixed point on the chosen setup: deployed models' curves "
        "re-estimated with the prompts the routing sends them, then re-routed (0: the "
        "workload's lengths were close enough)."))] = 0
    length_searches: Annotated[int, Field(ge=0, description=(
        "Searches re-run with routed lengths because the chosen setup missed the SLO once "
        "its curves were re-estimated with them."))] = 0


@dataclass(frozen=True, slots=True)
class SearchSummary:
    __pydantic_config__ = _EDGE
    enumerated: Annotated[int, _d("Every combination of per-model options, memory-infeasible "
                                  "shapes and 'not deployed' included.")]
    retained: Annotated[OptInt, _d("Combinations that fit in memory and are placed on the "
                                   "GPUs = dominated + non_dominated (null: not enumerated, "
                                   "method lagrangian).")]
    dominated: Annotated[OptInt, _d("Retained setups one upgrade away from another retained "
                                    "one (never better; not solved; null: not enumerated).")]
    non_dominated: Annotated[OptInt, _d("Retained setups that are not dominated = evaluated "
                                        "+ pruned_by_bound + over_capacity (null: not "
                                        "enumerated).")]
    evaluated: Annotated[int, _d("Setups solved by the routing solver, baselines apart "
                                 "(exhaustive: non-dominated ones).")]
    pruned_by_bound: Annotated[OptInt, _d("Non-dominated setups whose quality bound could "
                                          "not beat the best found (null: not enumerated).")]
    over_capacity: Annotated[OptInt, _d("Non-dominated setups whose capacity is below the "
                                        "rate (null: not enumerated).")]
    baselines_evaluated: Annotated[int, _d("Baseline setups solved (counted apart).")]
    sampled_for_spread: Annotated[int, _d("Dominated setups solved only to measure the "
                                          "quality spread.")]
    seconds: Annotated[float, _d("Wall time of the search.")]
    quality_min: Annotated[OptFloat, _d("Lowest quality over feasible solved setups.")]
    quality_max: Annotated[OptFloat, _d("Highest quality over feasible solved setups.")]
    spread: Annotated[OptFloat, _d("quality_max / quality_min − 1.")]
    spread_over: Annotated[str, _d("Which setups the spread is measured over.")]
    feasible_evaluated: Annotated[int, _d("Solved setups (any kind) that meet the SLO.")]
    method: Annotated[Literal["lagrangian", "exhaustive"], _d(
        "How setups were searched: 'lagrangian' (pricing by HiGHS, a bundle method on the "
        "duals, bounded local search) or 'exhaustive' (every placeable setup).")] = "exhaustive"
    upper_bound: Annotated[OptFloat, _d(
        "Proven upper bound on the predicted quality of any placeable setup (weak Lagrangian "
        "duality; exhaustive: the best bound of any setup not solved). Null when no setup "
        "meets the SLO.")] = None
    gap: Annotated[OptFloat, _d("(upper_bound − quality of the chosen setup) / upper_bound: "
                                "how far from optimal the plan can be.")] = None
    dual_iterations: Annotated[int, _d("Dual points at which the Lagrangian bound was "
                                       "evaluated (0 for exhaustive).")] = 0
    chosen_quality: Annotated[OptFloat, _d(
        "Quality of the search's choice on the curves it searched with (the workload's "
        "lengths, one instance per replica); quality_min/max, upper_bound and gap are on "
        "those curves too. quality.predicted is after the length fixed point, which "
        "re-estimates the chosen setup's curves with the lengths routed to each model (and "
        "its replicas balanced) and may move it either way (null: infeasible).")] = None


@dataclass(frozen=True, slots=True)
class BaselineResult:
    __pydantic_config__ = _EDGE
    feasible: Annotated[bool, _d("Some setup of this kind meets the SLO.")]
    quality: Annotated[OptFloat, _d("Its best routed quality, on the plan's scores.")]
    quality_truth: Annotated[OptFloat, _d("The same routing scored on outcome labels.")]
    setup: Annotated[tuple[Instance, ...], _d("Its placed instances.")]
    deployments: Annotated[tuple[Deployment, ...], _d("Its deployments.")]
    reason: Annotated[str, _d("Why it is (in)feasible.")]
    fractions: Annotated[dict[str, float], _d("Its routing's share of requests per model.")] \
        = field(default_factory=dict)
    prices: Annotated[dict[str, OptFloat], _d("Its routing's prices.")] \
        = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reachable:
    __pydantic_config__ = _EDGE
    message: Annotated[str, _d("Why no setup meets the SLO, and what is reachable.")]
    lowest_ttft_mean_ms: Annotated[OptFloat, _d("Lowest fleet mean TTFT any setup reaches at "
                                                "the plan's rate.")]
    max_rate_rps: Annotated[OptFloat, _d("Highest rate some setup serves within the SLO "
                                         "(rounded down to 3 significant digits).")]


@dataclass(frozen=True, slots=True)
class PlanProvenance:
    __pydantic_config__ = _EDGE
    workload: Annotated[str, _d("measured, derived: where the prompts come from.")]
    workload_source: Annotated[str, _d("File or scenario data of the workload.")]
    scores: Annotated[ScoreSource, _d("What routing was solved on.")]
    latency: Annotated[tuple[str, ...], _d("Provenances of the latency curves used.")]
    profiles: Annotated[dict[str, int], _d("Curves by provenance (measured, estimated).")]
    quality_predicted: Annotated[str, _d("How quality.predicted was computed.")]
    quality_truth: Annotated[str, _d("How quality.truth was computed.")]
    notes: Annotated[tuple[str, ...], _d("Everything a reader should know.")]


@dataclass(frozen=True, slots=True)
class PlanInputsInfo:
    __pydantic_config__ = _EDGE
    spec: Annotated[dict[str, Any], _d("The resolved spec (overrides applied, workload path "
                                       "absolute) — enough to rebuild the workload.")]
    spec_sha256: Annotated[str, _d("Digest of the resolved spec.")]
    workload_sha256: Annotated[str, _d("Digest of the score matrix used.")]
    num_prompts: Annotated[int, _d("Prompts in the workload sample.")]
    routerwise_version: Annotated[str, _d("Version that wrote the plan.")]
    predictor: Annotated[str | None, _d("Predictor directory whose predictions the routing "
                                        "was solved on (null: the workload's own scores).")] \
        = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan: the chosen setup and routing, what was predicted, and how it was found."""

    __pydantic_config__ = _EDGE

    plan_version: Annotated[int, _d(f"Contract version; this reader accepts {PLAN_VERSION}.")]
    feasible: Annotated[bool, _d("A setup meets the SLO at the rate.")]
    scenario: Annotated[str, _d("Built-in scenario name or spec path.")]
    rate_rps: Annotated[float, Field(gt=0, description="Total arrival rate planned for.")]
    slo: SloTarget
    cluster: ClusterInfo
    models: Annotated[tuple[str, ...], _d("Every model of the spec, in spec order.")]
    quality: Quality
    setup: Annotated[tuple[Instance, ...], _d("The chosen setup's placed instances.")]
    deployments: Annotated[tuple[Deployment, ...], _d("The chosen setup's deployments.")]
    routing: Routing
    predicted: Prediction
    search: SearchSummary
    baselines: Annotated[dict[str, BaselineResult], _d("equal_split, size_proportional, "
                                                       "isolated, best_single_model.")]
    infeasible: Annotated[Reachable | None, _d("What is reachable, when not feasible.")]
    warnings: Annotated[tuple[str, ...], _d("Things an operator should check.")]
    provenance: PlanProvenance
    inputs: PlanInputsInfo
    profiles_file: Annotated[str, _d("CSV beside plan.json with every latency curve used.")]

    def __post_init__(self) -> None:
        if self.plan_version != PLAN_VERSION:
            raise InputError(f"plan_version {self.plan_version} is not supported by this "
                             f"routerwise (it reads version {PLAN_VERSION}); re-run plan")
        if self.feasible == (self.infeasible is not None):
            raise InputError("a plan is feasible xor it carries `infeasible`")

    @property
    def chosen(self) -> Setup | None:
        """The chosen setup as the typed deployment vocabulary (None when infeasible)."""
        if not self.feasible:
            return None
        return setup_from_instances(self.setup)


@cache
def _adapter() -> TypeAdapter[Plan]:
    from pydantic import TypeAdapter

    return TypeAdapter(Plan)


def plan_json_schema() -> dict[str, Any]:
    """JSON schema of plan.json (``routerwise schema plan``)."""
    return _adapter().json_schema()


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (what plan.json holds)."""
    data: dict[str, Any] = _adapter().dump_python(plan, mode="json")
    return data


def plan_from_dict(data: Any, source: str = "<plan>") -> Plan:
    """Validate parsed plan data; errors name ``source`` and each field path."""
    version = data.get("plan_version") if isinstance(data, dict) else None
    if isinstance(data, dict) and version != PLAN_VERSION:
        raise InputError(f"{source}: plan_version {version!r} is not supported (this "
                         f"routerwise reads version {PLAN_VERSION}); re-run `routerwise plan`")
    try:
        return _adapter().validate_python(data)
    except ValidationError as exc:
        raise InputError(validation_lines(exc, source)) from None


def load_plan(path: Path | str) -> Plan:
    """Read and validate a plan.json (a directory means its plan.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / PLAN_FILE
    if not path.is_file():
        raise InputError(f"{path}: plan file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON plan: {exc}") from exc
    return plan_from_dict(data, str(path))


def dump_plan(plan: Plan) -> str:
    """plan.json text (strict JSON: no NaN or infinities)."""
    return json.dumps(plan_to_dict(plan), indent=2, allow_nan=False) + "\n"
