"""Latency curves of deployments: an instance shape's curve, replicated.

``replicas`` identical instances behind an even load balancer each see ``λ / replicas``, so
the deployment's curve is the shape's curve with its rates multiplied by ``replicas``: at
least as fast at every rate, with ``replicas`` times the capacity.
"""

from __future__ import annotations

from collections.abc import Mapping

from routerwise.latency.curve import LatencyCurve, PiecewiseLinearCurve
from routerwise.profiles.table import ProfilePoints
from routerwise.spec.core import readonly
from routerwise.spec.deployment import InstanceShape

#: The curve of one instance of each shape.
ShapeCurves = Mapping[InstanceShape, LatencyCurve]


def deployment_curve(shape: LatencyCurve, model: str, replicas: int) -> LatencyCurve:
    """The mean-TTFT curve of ``replicas`` instances sharing the load evenly."""
    if replicas == 1:
        return shape
    points = ProfilePoints(model, readonly(shape.rates_ * replicas), shape.values_,
                           "ttft_mean_ms", (), f"<{replicas} replicas of {model}>")
    return PiecewiseLinearCurve().fit(points)

