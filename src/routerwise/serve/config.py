"""Serve stage — the gateway's configuration: frozen values parsed and checked once.

``--backend MODEL=URL`` names the plan model a backend serves and its OpenAI base URL
(``http://host:port`` or ``…/v1``). A backend's served model name is learned from its
``/v1/models`` at start-up when the plan's name is not there (vLLM's ``--served-model-name``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from routerwise.errors import InputError

#: Model names a client uses to ask the gateway to route (``routerwise`` is listed in
#: ``/v1/models``; ``auto`` is what LiteLLM-style clients send).
ROUTED_NAMES = ("routerwise", "auto")


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One backend: the plan model it serves and its base URL (without ``/v1``)."""

    model: str
    base_url: str


def parse_backend(text: str) -> BackendSpec:
    """``MODEL=URL`` → a ``BackendSpec``; an ``InputError`` names what is wrong."""
    model, sep, url = text.partition("=")
    model, url = model.strip(), url.strip().rstrip("/")
    if not sep or not model or not url:
        raise InputError(f"--backend {text!r}: expected MODEL=URL, e.g. "
                         "llama-3.1-8b=http://127.0.0.1:8001")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--backend {text!r}: URL must start with http:// or https:// "
                         "and name a host")
    url = url.removesuffix("/v1")
    return BackendSpec(model, url)


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """The online price controller (``serve.controller``): bounded and damped."""

    enabled: bool = True
    interval_s: float = 5.0  # one control step per interval
    min_samples: int = 20  # TTFT samples a step needs before it acts on latency
    gain: float = 0.5  # integral gain on the relative TTFT error, per step
    deadband: float = 0.03  # TTFT this far below the SLO is not relaxed further (noise)
    max_tighten: float = 1.0  # τ_eff ≥ τ·e^−max_tighten
    max_relax: float = 0.3  # τ_eff ≤ τ·e^max_relax
    smoothing: float = 0.5  # EWMA weight of a new window's rate and TTFT
    price_damping: float = 0.5  # prices move this fraction of the way per step
    resolve_rtol: float = 0.02  # re-solve when rate or τ_eff moved more than this

    def __post_init__(self) -> None:
        for name in ("interval_s", "gain", "max_tighten", "max_relax"):
            if getattr(self, name) <= 0:
                raise InputError(f"controller {name}={getattr(self, name)!r} must be > 0")
        for name in ("smoothing", "price_damping"):
            if not 0 < getattr(self, name) <= 1:
                raise InputError(f"controller {name}={getattr(self, name)!r} must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything ``create_app`` needs; every limit has a unit in its name."""

    plan_path: Path
    backends: tuple[BackendSpec, ...]
    predictor_dir: Path | None = None
    api_key: str | None = None  # None: no authentication
    max_body_bytes: int = 4 * 1024 * 1024  # 413 above
    max_attempts: int = 3  # the chosen model plus at most two fallbacks
    max_running_per_backend: int = 256  # a backend at this many in flight is saturated
    connect_timeout_s: float = 2.0
    first_token_timeout_s: float = 60.0  # before any byte is sent: fall back after this
    request_timeout_s: float = 600.0  # a whole response (long generations)
    health_interval_s: float = 2.0
    unhealthy_after: int = 2  # consecutive failed health checks take a backend out
    retry_after_s: int = 1  # Retry-After on 429
    drain_timeout_s: float = 30.0  # graceful shutdown waits this long for in-flight requests
    seed: int = 0  # the tie-breaking sampler
    # http:// backends: completions over serve.upstream, health checks over serve.transport
    # (False: both through httpx's own transport)
    lean_transport: bool = True
    controller: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self) -> None:
        if not self.backends:
            raise InputError("at least one --backend MODEL=URL is required")
        names = [b.model for b in self.backends]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"--backend given more than once for {dup}")
        if self.max_attempts < 1:
            raise InputError(f"max_attempts={self.max_attempts} must be >= 1")
        if self.max_body_bytes < 1024:
            raise InputError(f"max_body_bytes={self.max_body_bytes} must be >= 1024")
        if self.max_running_per_backend < 1:
            raise InputError(f"max_running_per_backend={self.max_running_per_backend} "
                             "must be >= 1")
