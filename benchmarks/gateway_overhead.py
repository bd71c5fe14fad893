"""Gateway overhead: TTFT through ``routerwise serve`` against calling the backend directly,
in one run, at the same time, on the same emulated backends.

Two emulated engines (one per model of a small real plan, ``tests/serve/planfixture.py``;
fixed step times by default, ``--backends engine`` for ``routerwise emulate``) and the
gateway (``routerwise serve`` with the plan's TF-IDF
predictor, so prediction is included) run as subprocesses on 127.0.0.1. An open-loop
Poisson load sends ``--rate-rps`` streamed chat requests per second through the gateway
and, interleaved, as many straight to the backend the gateway's rule picks for the same
prompt. TTFT is measured by the client (request sent → first chunk carrying a token); the
client is a minimal keep-alive HTTP/1.1 client on asyncio streams, so the load generator
itself costs little CPU. Also printed: the load average before and after, how many answers
each backend gave on each path (the two paths load the backends alike), and the CPU each
process used after the warm-up (cores, and ms per gateway request) — on a shared machine
the gateway's share of a core is what decides whether it keeps up.
Goal (issue 11): the gateway adds ≤ 2 ms at p50 and ≤ 5 ms at p99 at 200 req/s.

Run: ``.venv/bin/python benchmarks/gateway_overhead.py [--rate-rps 200] [--duration-s 20]
[--profile-gateway FILE]`` (the last runs the gateway under cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.serve.planfixture builds the plan and predictor

from routerwise.predict.artifact import load_predictor  # noqa: E402
from routerwise.spec.plan import load_plan  # noqa: E402
from tests.serve.planfixture import MODELS, ServeFixture, build_serve_fixture  # noqa: E402
from tests.serve.rawclient import RawClient  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FIXED_EMULATOR = (
    "import sys, uvicorn; sys.path.insert(0, {root!r}); "
    "from tests.serve.servers import emulator_app; "
    "uvicorn.run(emulator_app({model!r}, decode_ms=5.0, prefill_ms=10.0), host='127.0.0.1', "
    "port={port}, log_level='warning')"
)


#: The gateway under cProfile, counting CPU time (wall time would charge a function for
#: the time the process waited for a core); the stats are written when uvicorn, after
#: its graceful shutdown, re-raises SIGTERM (``python -m cProfile -o`` never gets to).
PROFILED = (
    "import cProfile, os, signal, sys, time; sys.argv = ['routerwise', *sys.argv[1:]]; "
    "p = cProfile.Profile(time.process_time); "
    "signal.signal(signal.SIGTERM, lambda *_: (p.disable(), p.dump_stats({out!r}), "
    "os._exit(0))); from routerwise.cli.app import main; p.enable(); main()"
)


def _spawn(stack: ExitStack, args: list[str],
           profile: str | None = None) -> subprocess.Popen[bytes]:
    log = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
    cmd = args if args[0] == "-c" else ["-m", "routerwise", *args]
    if profile:
        cmd = ["-c", PROFILED.format(out=str(Path(profile).resolve())), *args]
    proc = subprocess.Popen([sys.executable, *cmd], stdout=subprocess.DEVNULL, stderr=log)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()

    stack.callback(stop)
    return proc


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy")


def _direct_targets(fx: ServeFixture) -> list[str]:
    """The model the gateway's rule picks for each prompt (no ties at these scores)."""
    plan = load_plan(fx.plan_dir)
    pred = load_predictor(fx.predictor_dir)
    cols = [pred.models.index(m) for m in MODELS]
    scores = pred.predict(list(fx.prompts), None)[:, cols]
    prices = np.array([plan.routing.prices[m] or 0.0 for m in MODELS])
    return [MODELS[int(i)] for i in np.argmax(scores - prices, axis=1)]


#: One answer: TTFT (ms, NaN when it failed), the gateway's own time before forwarding
#: (ms; None on the direct path) and the backend model that served it.
Result = tuple[float, float | None, str]


async def _one(client: RawClient, url: str, model: str, prompt: str,
               max_tokens: int) -> Result:
    body = json.dumps({"model": model, "stream": True, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    try:
        resp = await client.post(url, "/v1/chat/completions", body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        print(f"{url}: {type(exc).__name__} {exc}", file=sys.stderr)
        return float("nan"), None, "failed"
    if resp.status != 200 or resp.ttft_ms is None:
        return float("nan"), None, "failed"
    overhead = resp.headers.get("x-routerwise-overhead-ms")
    return (resp.ttft_ms, None if overhead is None else float(overhead),
            resp.headers.get("x-routerwise-model", model))


async def _load(gateway: str, backends: dict[str, str], fx: ServeFixture, targets: list[str],
                rate_rps: float, duration_s: float, warmup_s: float, max_tokens: int,
                measuring: Callable[[], None]) -> dict[str, list[Result]]:
    """Both paths' answers after the warm-up; ``measuring()`` is called when it ends."""
    rng = np.random.default_rng(0)
    out: dict[str, list[Result]] = {"gateway": [], "direct": []}
    client = RawClient()
    tasks = []
    t0 = time.perf_counter()
    at = 0.0
    i = 0
    warm = True
    while at < warmup_s + duration_s:
        if warm and at >= warmup_s:
            warm = False
            measuring()
        at += rng.exponential(1.0 / (2 * rate_rps))  # both paths together
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        k = int(rng.integers(len(fx.prompts)))
        path = "gateway" if i % 2 == 0 else "direct"
        url, model = ((gateway, "routerwise") if path == "gateway"
                      else (backends[targets[k]], targets[k]))
        task = asyncio.create_task(_one(client, url, model, fx.prompts[k], max_tokens))
        tasks.append((path if at >= warmup_s else "warmup", task))
        i += 1
    lag_ms = (time.perf_counter() - t0 - at) * 1e3
    for path, task in tasks:
        result = await task
        if path != "warmup":
            out[path].append(result)
    client.close()
    print(f"load generator: last arrival sent {lag_ms:.1f} ms late", file=sys.stderr)
    return out


def _row(name: str, ttft: np.ndarray) -> str:
    ok = ttft[np.isfinite(ttft)]
    p50, p90, p99 = np.percentile(ok, [50, 90, 99]) if ok.size else (np.nan,) * 3
    return (f"{name:<10}{ttft.size:>8}{ok.size:>8}{p50:>10.2f}{p90:>10.2f}{p99:>10.2f}"
            f"{ok.mean() if ok.size else np.nan:>10.2f}")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate-rps", type=float, default=200.0, help="gateway requests/s "
                    "(the direct path gets as many)")
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--warmup-s", type=float, default=3.0)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--mps-share", type=float, default=1.0, help="each emulator's share")
    ap.add_argument("--backends", choices=("fixed", "engine"), default="fixed",
                    help="fixed: emulators with fixed step times (10 ms prefill, 5 ms decode; "
                         "little CPU, so the gateway is what is measured); engine: "
                         "`routerwise emulate` (aiconfigurator step times; CPU-heavy)")
    ap.add_argument("--profile-gateway", metavar="FILE", help="run the gateway under "
                    "cProfile (CPU time) and write its stats here")
    return ap.parse_args()


def _start(stack: ExitStack, fx: ServeFixture, args: argparse.Namespace,
           ) -> tuple[str, dict[str, str], dict[str, subprocess.Popen[bytes]]]:
    """Emulators and the gateway, up: the gateway's URL, the backends' and the processes."""
    backends = {m: f"http://127.0.0.1:{_port()}" for m in MODELS}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for m, url in backends.items():
        port = url.rsplit(":", 1)[1]
        if args.backends == "engine":
            procs[m] = _spawn(stack, ["emulate", "--model", m, "--gpu", "H100-SXM",
                                      "--mps-share", str(args.mps_share), "--port", port])
        else:
            procs[m] = _spawn(stack, ["-c", FIXED_EMULATOR.format(root=str(ROOT), model=m,
                                                                  port=port)])
    gw = f"http://127.0.0.1:{_port()}"
    procs["gateway"] = _spawn(stack, ["serve", "--plan", str(fx.plan_dir), "--predictor",
                                      str(fx.predictor_dir), "--no-control", "--log-level",
                                      "warning", "--port", gw.rsplit(":", 1)[1],
                                      *(a for m, u in backends.items()
                                        for a in ("--backend", f"{m}={u}"))],
                              args.profile_gateway)
    for url in [*backends.values(), gw]:
        _wait(url)
    return gw, backends, procs


def _measure(gw: str, backends: dict[str, str], procs: dict[str, subprocess.Popen[bytes]],
             fx: ServeFixture, args: argparse.Namespace,
             ) -> tuple[dict[str, list[Result]], dict[str, float], float]:
    """The answers, each process's CPU seconds after the warm-up, and that window's length."""
    cpu_before: dict[str, float] = {}
    wall = 0.0

    def measuring() -> None:  # the warm-up is over: CPU counts from here
        nonlocal wall
        cpu_before.update({name: _cpu_s(p.pid) for name, p in procs.items()})
        cpu_before["client"] = sum(os.times()[:2])
        wall = time.perf_counter()

    res = asyncio.run(_load(gw, backends, fx, _direct_targets(fx), args.rate_rps,
                            args.duration_s, args.warmup_s, args.max_tokens, measuring))
    wall = time.perf_counter() - wall
    cpu = {name: _cpu_s(p.pid) - cpu_before[name] for name, p in procs.items()}
    cpu["client"] = sum(os.times()[:2]) - cpu_before["client"]
    return res, cpu, wall


def _report(args: argparse.Namespace, res: dict[str, list[Result]], cpu: dict[str, float],
            wall: float, load_before: tuple[float, float, float]) -> None:
    gw_ttft = np.array([r[0] for r in res["gateway"]])
    dr_ttft = np.array([r[0] for r in res["direct"]])
    overhead = np.array([r[1] for r in res["gateway"] if r[1] is not None])
    print(f"gateway overhead at {args.rate_rps:g} req/s through the gateway + "
          f"{args.rate_rps:g} req/s direct, {args.duration_s:g} s measured, "
          f"max_tokens {args.max_tokens}, {args.backends} emulators, {os.cpu_count()} CPUs")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} "
          "{:.2f}".format(*load_before, *os.getloadavg()))
    print(f"{'TTFT ms':<10}{'sent':>8}{'ok':>8}{'p50':>10}{'p90':>10}{'p99':>10}{'mean':>10}")
    print(_row("direct", dr_ttft))
    print(_row("gateway", gw_ttft))
    g, d = gw_ttft[np.isfinite(gw_ttft)], dr_ttft[np.isfinite(dr_ttft)]
    add50 = np.percentile(g, 50) - np.percentile(d, 50)
    add99 = np.percentile(g, 99) - np.percentile(d, 99)
    print(f"added TTFT: p50 {add50:+.2f} ms (goal ≤ 2), p99 {add99:+.2f} ms (goal ≤ 5)")
    shares = {path: Counter(r[2] for r in rs) for path, rs in res.items()}
    print("answers by backend (both paths load the backends alike): " + "; ".join(
        f"{path} " + ", ".join(f"{m} {n}" for m, n in sorted(c.items()))
        for path, c in shares.items()))
    sent = len(res["gateway"])
    print(f"CPU over the {wall:.1f} s measured (cores used; ms per gateway request): "
          + ", ".join(f"{name} {c / wall:.2f} ({c / sent * 1e3:.2f})"
                      for name, c in cpu.items()))
    if overhead.size:
        o50, o99 = np.percentile(overhead, [50, 99])
        print(f"gateway's own time before forwarding (x-routerwise-overhead-ms): "
              f"p50 {o50:.3f} ms, p99 {o99:.3f} ms")


def main() -> None:
    args = _args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        os.environ.setdefault("ROUTERWISE_CACHE_DIR", str(Path(tmp) / "cache"))
        fx = build_serve_fixture(Path(tmp) / "fx")
        print("plan and predictor built", file=sys.stderr)
        gw, backends, procs = _start(stack, fx, args)
        print("servers up; measuring", file=sys.stderr)
        load_before = os.getloadavg()
        res, cpu, wall = _measure(gw, backends, procs, fx, args)
    _report(args, res, cpu, wall, load_before)


if __name__ == "__main__":
    main()
