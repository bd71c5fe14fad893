"""Serve stage — the gateway's Prometheus metrics (one registry per app, none global).

Names follow vLLM's where they overlap, with the ``routerwise:`` prefix instead of
``vllm:``: ``time_to_first_token_seconds`` and ``e2e_request_latency_seconds`` histograms
and ``num_requests_running``, each labelled ``model_name``; so a vLLM Grafana dashboard
needs only a prefix change. TTFT is measured at the gateway: from the request's arrival to
the first chunk carrying a token of a streamed response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: vLLM's TTFT buckets (seconds).
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                  2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
#: vLLM's E2E latency buckets (seconds).
E2E_BUCKETS_S = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
                 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
OVERHEAD_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass(frozen=True, slots=True)
class GatewayMetrics:
    registry: CollectorRegistry
    requests: Counter  # model_name, code
    errors: Counter  # model_name, kind
    fallbacks: Counter  # model_name (the one that failed)
    score_source: Counter  # source
    ttft: Histogram
    e2e: Histogram
    overhead: Histogram
    running: Gauge  # model_name
    queue_depth: Gauge
    healthy: Gauge  # model_name
    price: Gauge  # model_name
    multiplier: Gauge
    slo_target: Gauge
    solver_slo: Gauge
    measured_ttft: Gauge
    measured_rate: Gauge
    slo_slack: Gauge


def create_metrics() -> GatewayMetrics:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    reg = CollectorRegistry(auto_describe=True)
    p = "routerwise:"
    model = ["model_name"]
    return GatewayMetrics(
        registry=reg,
        requests=Counter(f"{p}requests", "Requests answered, by model and HTTP status.",
                         ["model_name", "code"], registry=reg),
        errors=Counter(f"{p}request_errors", "Failed attempts and refusals, by kind.",
                       ["model_name", "kind"], registry=reg),
        fallbacks=Counter(f"{p}fallbacks", "Requests moved to the next-best model after "
                          "this model failed.", model, registry=reg),
        score_source=Counter(f"{p}score_source", "Routed requests by where their scores "
                             "came from (predictor, task, prior).", ["source"], registry=reg),
        ttft=Histogram(f"{p}time_to_first_token_seconds", "Time to first token at the "
                       "gateway (streamed responses).", model, buckets=TTFT_BUCKETS_S,
                       registry=reg),
        e2e=Histogram(f"{p}e2e_request_latency_seconds", "End-to-end request latency at the "
                      "gateway.", model, buckets=E2E_BUCKETS_S, registry=reg),
        overhead=Histogram(f"{p}gateway_overhead_seconds", "Time the gateway spends before "
                           "forwarding (parse, predict, route).", buckets=OVERHEAD_BUCKETS_S,
                           registry=reg),
        running=Gauge(f"{p}num_requests_running", "Requests in flight at each backend.",
                      model, registry=reg),
        queue_depth=Gauge(f"{p}queue_depth", "Requests in flight in the gateway.",
                          registry=reg),
        healthy=Gauge(f"{p}backend_healthy", "1 when the backend passes health checks.",
                      model, registry=reg),
        price=Gauge(f"{p}routing_price", "Current routing price (score units).", model,
                    registry=reg),
        multiplier=Gauge(f"{p}slo_multiplier_per_ms", "SLO Lagrange multiplier β of the "
                         "prices in force.", registry=reg),
        slo_target=Gauge(f"{p}slo_target_ms", "The plan's fleet mean TTFT target.",
                         registry=reg),
        solver_slo=Gauge(f"{p}controller_slo_target_ms", "The SLO the controller last "
                         "solved the routing for (τ_eff).", registry=reg),
        measured_ttft=Gauge(f"{p}measured_ttft_mean_ms", "Smoothed measured fleet mean TTFT.",
                            registry=reg),
        measured_rate=Gauge(f"{p}measured_rate_rps", "Smoothed arrival rate of routed "
                            "requests.", registry=reg),
        slo_slack=Gauge(f"{p}slo_slack_ms", "SLO target − smoothed measured mean TTFT.",
                        registry=reg),
    )


@dataclass(frozen=True, slots=True)
class BackendMetrics:
    """One backend's labelled children, looked up once (``labels()`` takes a lock and a
    dict lookup on every call; the hot path updates these directly)."""

    ttft: Any
    e2e: Any
    running: Any
    backend_errors: Any  # request_errors{kind="backend"}
    stream_broken: Any  # request_errors{kind="stream_broken"}
    fallbacks: Any
    healthy: Any
    _requests: Any  # the requests counter, by code on first use
    _codes: dict[int, Any]

    def requests(self, status: int) -> Any:
        child = self._codes.get(status)
        if child is None:
            child = self._codes[status] = self._requests(str(status))
        return child


def backend_metrics(metrics: GatewayMetrics, model: str) -> BackendMetrics:
    def requests(code: str) -> Any:
        return metrics.requests.labels(model, code)

    return BackendMetrics(
        ttft=metrics.ttft.labels(model), e2e=metrics.e2e.labels(model),
        running=metrics.running.labels(model),
        backend_errors=metrics.errors.labels(model, "backend"),
        stream_broken=metrics.errors.labels(model, "stream_broken"),
        fallbacks=metrics.fallbacks.labels(model), healthy=metrics.healthy.labels(model),
        _requests=requests, _codes={})


def render(metrics: GatewayMetrics) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
