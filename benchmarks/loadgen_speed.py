"""Load generator speed: is the client the bottleneck? (issue 10)

Runs ``routerwise profile``'s generator (the same ``run_profile`` the CLI calls) open loop
against the synthetic OpenAI-compatible server on 127.0.0.1 (a subprocess, so the client
has its own process) configured as a *fast* server: no queue and no service time, 4 tokens
streamed at once per request. Whatever time a request takes there is overhead: the client's
scheduling and HTTP code (``transport.RawStreamer``), the loopback, the server's Python.
Per rate it prints

* the offered rate achieved (requests sent over the span of their actual send times) and
  the completion throughput, errors, and the client's CPU time per request;
* the client's send lag (p50/p99): how late requests left against their Poisson schedule;
* TTFT p50/p99 (from the scheduled time): the generator's whole added latency at that rate;
* the same TTFT p50 as a ratio to the reference measured in the same run: the same client at
  20 req/s, where nothing queues anywhere.

Goal: ≥ 500 req/s sustained on 2 cores (achieved ≥ 99% of the rate, no errors, send lag p99
well under the typical TTFT of a real server — tens of ms). Default rates 20 (reference),
500, 750 and 1000 req/s, 10 s each. The machine's load average is printed before and after
(the server and the client share its cores with whatever else runs), and the last line
names the fastest rate sustained by that definition (send lag p99 ≤ 50 ms).

Run: ``.venv/bin/python benchmarks/loadgen_speed.py [--rates 20,500,1000] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import time

import numpy as np

from routerwise.profiles.arrivals import Poisson
from routerwise.profiles.client import ClientSettings, Endpoint
from routerwise.profiles.loadgen import LoadSettings, RateResult, plan_rates, run_profile
from routerwise.profiles.profiler import point_of
from routerwise.profiles.prompts import fixed_pool
from routerwise.profiles.synthetic_server import ServerConfig, running_server


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _one_rate(url: str, rate: float, seconds: float) -> tuple[RateResult, float]:
    settings = ClientSettings(Endpoint.parse(url), "synthetic", timeout_s=30)
    n = max(20, round(rate * seconds))
    plans = plan_rates([rate], n, fixed_pool(16), Poisson(), seed=0, max_tokens=4)
    cpu = _cpu_s()
    run = await run_profile(settings, plans, load=LoadSettings(saturation=None))
    return run.results[0], _cpu_s() - cpu


def _pct(values: list[float], q: float) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.percentile(finite, q)) if finite else math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="20,500,750,1000",
                   help="req/s; the first is the reference")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per rate")
    args = p.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    config = ServerConfig(service_ms=0.0, workers=0, tokens=4)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'rate':>6} {'offered':>8} {'done/s':>8} {'errors':>6} {'cpu ms/req':>10} "
          f"{'lag p50':>8} {'lag p99':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'p50/ref':>8}")
    reference = math.nan
    sustained = 0.0
    with running_server(config) as url:
        for rate in rates:
            t = time.perf_counter()
            result, cpu = asyncio.run(_one_rate(url, rate, args.seconds))
            point = point_of(result)
            assert point is not None, "no request succeeded"
            recs = result.records
            ttft = [r.ttft_ms for r in recs if r.success]
            lag = [r.send_lag_ms for r in recs]
            p50 = _pct(ttft, 50)
            if math.isnan(reference):
                reference = p50
            print(f"{rate:6.0f} {point['offered_rate_rps']:8.1f} {point['throughput_rps']:8.1f} "
                  f"{point['failed']:6d} {1e3 * cpu / len(recs):10.2f} {_pct(lag, 50):8.2f} "
                  f"{_pct(lag, 99):8.2f} {p50:9.2f} {_pct(ttft, 99):9.2f} "
                  f"{p50 / reference:8.2f}   ({time.perf_counter() - t:.1f} s)")
            if (float(point["offered_rate_rps"]) >= 0.99 * rate  # type: ignore[arg-type]
                    and point["failed"] == 0 and _pct(lag, 99) <= 50.0):
                sustained = max(sustained, rate)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"fastest rate sustained (>= 99% offered, no errors, send lag p99 <= 50 ms): "
          f"{sustained:g} req/s")


if __name__ == "__main__":
    main()
