"""Load-test the emulator at three rates and compare its mean TTFT with the estimator's curve.

Starts ``routerwise emulate`` for one shape in a subprocess (127.0.0.1, a free port), sends
Poisson arrivals of streaming chat completions (prompts of exactly ``--input-tokens`` tokens
by the emulator's chars/4 rule, ``max_tokens`` = ``--output-tokens``) and measures TTFT as the
time to the first content chunk. The arrival gaps are the estimator's own (``run_rate``: the
same seed, the same unit-rate exponential gaps), so the estimator's profile at those rates is
the exact reference and any difference is the emulator's real-time shell (HTTP, event loop,
wake-up jitter). The bar is 15%.

The client: ``raw`` (default) is a minimal asyncio HTTP/1.1 client (one connection per
request, the request in one write) whose own overhead is well under a millisecond;
``openai`` is the official SDK, which adds its own per-request cost (httpx's async stack
measured ~7–10 ms per request on a 2-core machine, more under load: that is the client, not
the emulator).

    .venv/bin/python benchmarks/emulator_curve.py [--model llama-3.1-70b --gpu H100-SXM --tp 4]
        [--requests 150] [--fractions 0.3,0.6,0.85]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np

from routerwise.profiles.estimator import (
    WARMUP_SHARE,
    InstanceShape,
    TokenLengths,
    estimate_profile,
    sustained_capacity,
    window_requests,
)
from routerwise.spec.catalog import get_gpu, get_model

BAR = 0.15


@dataclass(frozen=True)
class Shape:
    model: str
    gpu: str
    tp: int
    mps_share: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def emulator(shape: Shape, port: int, timeout_s: float = 120.0) -> Iterator[str]:
    """A ``routerwise emulate`` subprocess; yields its base URL, always stops it."""
    cmd = [sys.executable, "-m", "routerwise", "emulate", "--model", shape.model, "--gpu",
           shape.gpu, "--tp", str(shape.tp), "--mps-share", str(shape.mps_share),
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"emulator exited with {proc.returncode}: {err}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"emulator not healthy after {timeout_s:g} s")
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def arrivals(rate_rps: float, n: int, seed: int) -> np.ndarray:
    """The estimator's arrival times at ``rate_rps`` (``run_rate``: same seed, same gaps)."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0, size=n)) / rate_rps


def steady_arrivals(rate_rps: float, window: int, seed: int) -> tuple[np.ndarray, int]:
    """The arrival times of the estimator's steady-state run at ``rate_rps`` (``steady_run``:
    same seed, same gaps) and the index of its first measured request (after the warm-up)."""
    total = math.ceil(window / (1 - WARMUP_SHARE))
    gap_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    return np.cumsum(gap_rng.exponential(1.0, size=total)) / rate_rps, total - window


async def _one(client: object, model: str, prompt: str, out: int, at: float,
               t0: float) -> float:
    from openai import AsyncOpenAI

    assert isinstance(client, AsyncOpenAI)
    await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
    sent = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=out,
        stream=True)
    first = None
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    assert first is not None
    return (first - sent) * 1e3


async def _raw_one(host: str, port: int, request: bytes, at: float, t0: float) -> float:
    """TTFT (ms) of one streamed request over a fresh connection; reads it to the end."""
    await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
    sent = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(request)
    first = None
    buffer = b""
    try:
        while b"[DONE]" not in buffer:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the emulator closed the stream early")
            buffer = buffer[-64:] + data
            if first is None and b'"content": " tok' in buffer:
                first = time.perf_counter()
    finally:
        writer.close()
    assert first is not None
    return (first - sent) * 1e3


def _request(base_url: str, model: str, prompt: str, output_tokens: int) -> tuple[str, int,
                                                                                 bytes]:
    url = httpx.URL(base_url)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}],
                       "max_tokens": output_tokens, "stream": True}).encode()
    head = (f"POST {url.path.rstrip('/')}/chat/completions HTTP/1.1\r\nHost: {url.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return str(url.host), int(url.port or 80), head.encode() + body


async def load(base_url: str, model: str, times_s: np.ndarray, input_tokens: int,
               output_tokens: int, client: str = "raw") -> np.ndarray:
    """TTFT (ms) of one streamed request per arrival time."""
    prompt = "abcd" * input_tokens  # chars / 4 = input_tokens
    t0 = time.perf_counter() + 0.2
    if client == "raw":
        host, port, request = _request(base_url, model, prompt, output_tokens)
        return np.array(await asyncio.gather(*[_raw_one(host, port, request, float(a), t0)
                                               for a in times_s]))
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=base_url, api_key="emulator", max_retries=0,
                           timeout=600.0) as sdk:
        tasks = [_one(sdk, model, prompt, output_tokens, float(a), t0) for a in times_s]
        return np.array(await asyncio.gather(*tasks))


def compare(shape: Shape, fractions: tuple[float, ...], n: int, input_tokens: int,
            output_tokens: int, seed: int = 0, client: str = "raw") -> list[dict[str, float]]:
    """Per rate: estimator vs emulator mean TTFT (ms) and the relative error."""
    lengths = TokenLengths.fixed(input_tokens, output_tokens)
    arch, gpu = get_model(shape.model), get_gpu(shape.gpu)
    capacity = sustained_capacity(InstanceShape(arch, gpu, shape.tp, shape.mps_share), lengths,
                                  n, seed)
    sat = capacity.rps
    rates = [f * sat for f in fractions]
    table = estimate_profile(arch, gpu, shape.tp, shape.mps_share, rates, lengths,
                             num_requests=n, seed=seed).frame
    rows = []
    with emulator(shape, free_port()) as url:
        asyncio.run(load(url, arch.id, np.zeros(2), input_tokens, 4, client))  # warm-up
        for rate, est in zip(rates, table["ttft_mean_ms"], strict=True):
            # the estimator's own experiment: its arrivals, its warm-up left out
            times, first = steady_arrivals(
                rate, window_requests(rate, n, None, capacity.lifetime_s), seed)
            ttft = np.asarray(asyncio.run(load(url, arch.id, times, input_tokens,
                                               output_tokens, client)))[first:]
            emu = float(np.mean(ttft))
            rows.append({"rate_rps": rate, "fraction": rate / sat, "estimator_ms": float(est),
                         "emulator_ms": emu, "error": emu / float(est) - 1,
                         "emulator_p90_ms": float(np.percentile(ttft, 90))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="llama-3.1-70b")
    parser.add_argument("--gpu", default="H100-SXM")
    parser.add_argument("--tp", type=int, default=4)
    parser.add_argument("--mps-share", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--fractions", default="0.3,0.6,0.85")
    parser.add_argument("--input-tokens", type=int, default=512)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--client", choices=("raw", "openai"), default="raw")
    args = parser.parse_args()
    shape = Shape(args.model, args.gpu, args.tp, args.mps_share)
    fractions = tuple(float(f) for f in args.fractions.split(","))
    started = time.perf_counter()
    rows = compare(shape, fractions, args.requests, args.input_tokens, args.output_tokens,
                   client=args.client)
    print(f"{shape.model} on {shape.gpu} tp={shape.tp} share={shape.mps_share:g}, "
          f"{args.input_tokens} → {args.output_tokens} tokens, {args.requests} requests/rate, "
          f"{args.client} client")
    print(f"{'rate req/s':>10} {'of sat.':>8} {'estimator ms':>13} {'emulator ms':>12} "
          f"{'error':>7} {'emu p90 ms':>11}")
    for r in rows:
        print(f"{r['rate_rps']:>10.3g} {r['fraction']:>8.0%} {r['estimator_ms']:>13.1f} "
              f"{r['emulator_ms']:>12.1f} {r['error']:>+7.1%} {r['emulator_p90_ms']:>11.1f}")
    worst = max(abs(r["error"]) for r in rows)
    print(f"worst |error| {worst:.1%} (bar {BAR:.0%}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
