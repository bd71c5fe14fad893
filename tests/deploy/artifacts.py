"""Read rendered deployment artifacts back into one neutral form, and check them against a plan.

Each reader returns the engines the artifacts start (:class:`Launched`: model, node, cluster
GPU ids, tp, MPS thread percentage, ``--gpu-memory-utilization``, pinned memory, port) and
the gateway's backends. Scripts are not parsed: they are *run*, against fake ``vllm``,
``nvidia-smi``, ``nvidia-cuda-mps-control``, ``curl`` and ``routerwise`` executables that
record what they were started with (``run_scripts``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from routerwise.spec.catalog import get_gpu
from routerwise.spec.plan import Plan


@dataclass(frozen=True)
class Launched:
    name: str
    model: str
    node: int
    gpus: tuple[int, ...]  # cluster ids
    tp: int
    thread_percentage: int | None
    gpu_memory_utilization: float
    pinned_mib: int | None
    port: int


@dataclass(frozen=True)
class Backend:
    model: str
    target: str  # host or service
    port: int


@dataclass
class Artifacts:
    engines: list[Launched]
    backends: list[Backend]


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _pinned(value: str | None) -> int | None:
    if value is None:
        return None
    limits = {int(k): int(v.rstrip("M")) for k, v in (p.split("=") for p in value.split(","))}
    assert len(set(limits.values())) == 1, value
    return next(iter(limits.values()))


def _launched(name: str, args: list[str], env: dict[str, str], node: int,
              gpus: tuple[int, ...]) -> Launched:
    pct = env.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")
    return Launched(
        name=name, model=_flag(args, "--served-model-name"), node=node, gpus=gpus,
        tp=int(_flag(args, "--tensor-parallel-size")),
        thread_percentage=None if pct is None else int(pct),
        gpu_memory_utilization=float(_flag(args, "--gpu-memory-utilization")),
        pinned_mib=_pinned(env.get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")),
        port=int(_flag(args, "--port")))


def _backend(spec: str) -> Backend:
    model, _, url = spec.partition("=")
    m = re.fullmatch(r"http://(.+):(\d+)", url)
    assert m, spec
    return Backend(model, m.group(1), int(m.group(2)))


# --- vllm-script: run the scripts against fakes --------------------------------------------

_FAKE_RECORDER = """#!/usr/bin/env bash
log="$FAKE_LOG/$(basename "$0")-$$.txt"
for a in "$@"; do printf 'ARG\\t%s\\n' "$a"; done >"$log"
env | grep -E '^(CUDA_|FAKE_NODE=)' | sed 's/^/ENV\\t/' >>"$log"
exec sleep 120
"""
_FAKE_SMI = """#!/usr/bin/env bash
ids=""
while [[ $# -gt 0 ]]; do if [[ $1 == -i ]]; then ids=$2; shift; fi; shift; done
IFS=, read -ra list <<<"$ids"
for i in "${list[@]}"; do echo "GPU-fake-$i"; done
"""
_FAKE_MPS = """#!/usr/bin/env bash
if [[ "${1:-}" == "-d" ]]; then
  sleep 120 </dev/null >/dev/null 2>&1 &
  echo "$!" >"$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid"
  echo "start $FAKE_NODE $CUDA_VISIBLE_DEVICES $CUDA_MPS_PIPE_DIRECTORY" >>"$FAKE_LOG/mps.txt"
else
  read -r cmd
  echo "$cmd $CUDA_MPS_PIPE_DIRECTORY" >>"$FAKE_LOG/mps.txt"
  pidfile="$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid"
  if [[ $cmd == quit ]]; then kill "$(cat "$pidfile")"; fi
fi
"""
FAKES = {"vllm": _FAKE_RECORDER, "routerwise": _FAKE_RECORDER, "nvidia-smi": _FAKE_SMI,
         "nvidia-cuda-mps-control": _FAKE_MPS, "curl": "#!/usr/bin/env bash\nexit 0\n"}


def fake_env(tmp: Path) -> dict[str, str]:
    bin_dir, log = tmp / "fake-bin", tmp / "fake-log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log),
            "ROUTERWISE_RUN_DIR": str(tmp / "run")}


def _records(log: Path, program: str) -> list[tuple[list[str], dict[str, str]]]:
    out = []
    for path in sorted(log.glob(f"{program}-*.txt")):
        args, env = [], {}
        for line in path.read_text().splitlines():
            kind, _, value = line.partition("\t")
            if kind == "ARG":
                args.append(value)
            else:
                k, _, v = value.partition("=")
                env[k] = v
        out.append((args, env))
    return out


def _gpus_of(env: dict[str, str], node: int, per_node: int) -> tuple[int, ...]:
    local = [int(d.removeprefix("GPU-fake-")) for d in env["CUDA_VISIBLE_DEVICES"].split(",")]
    return tuple(node * per_node + g for g in local)


def run_scripts(out: Path, tmp: Path, plan: Plan) -> tuple[Artifacts, dict[str, str], str]:
    """Run every node script and the gateway script, then stop.sh; what was started."""
    env = fake_env(tmp)
    for script in sorted(out.glob("node-*.sh")):
        node = int(script.stem.removeprefix("node-"))
        subprocess.run([str(script)], env={**env, "FAKE_NODE": str(node)}, check=True,
                       capture_output=True, text=True, timeout=60)
    node_vars = {f"ROUTERWISE_NODE_{n}_HOST": f"10.0.0.{n}" for n in range(16)}
    subprocess.run([str(out / "gateway.sh")], check=True, capture_output=True, text=True,
                   timeout=60, env={**env, **node_vars, "ROUTERWISE_API_KEY": "k"})
    log = Path(env["FAKE_LOG"])
    _wait_for(log, "vllm", len(plan.setup))  # the scripts start them in the background
    _wait_for(log, "routerwise", 1)
    per_node = plan.cluster.gpus_per_node
    engines = [_launched("?", args, e, int(e["FAKE_NODE"]),
                         _gpus_of(e, int(e["FAKE_NODE"]), per_node))
               for args, e in _records(log, "vllm")]
    (gw_args, _), = _records(log, "routerwise")
    backends = [_backend(gw_args[i + 1]) for i, a in enumerate(gw_args) if a == "--backend"]
    pids = _pids(tmp / "run")
    stop = subprocess.run([str(out / "stop.sh")], env=env, check=True, capture_output=True,
                          text=True, timeout=120)
    alive = _still_alive(pids)
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, f"stop.sh left {alive} running: {stop.stdout}"
    return Artifacts(engines, backends), env, (log / "mps.txt").read_text() \
        if (log / "mps.txt").exists() else ""


def _wait_for(log: Path, program: str, count: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [p for p in log.glob(f"{program}-*.txt") if "ENV\tFAKE_NODE" in p.read_text()
                or (program == "routerwise" and p.read_text())]
        if len(done) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{program}: {count} start(s) expected within {timeout_s} s")


def _still_alive(pids: list[int], grace_s: float = 10.0) -> list[int]:
    """The pids still running once signalled processes have had ``grace_s`` to exit."""
    deadline = time.monotonic() + grace_s
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return alive


def _pids(run: Path) -> list[int]:
    return [int(p.read_text()) for p in run.rglob("*.pid")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited (a container's init may reap it late)
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


# --- compose ------------------------------------------------------------------------------


def read_compose(out: Path, plan: Plan) -> Artifacts:
    engines, backends = [], []
    per_node = plan.cluster.gpus_per_node
    for path in sorted(out.glob("compose*.yaml")):
        doc = yaml.safe_load(path.read_text())
        m = re.fullmatch(r"compose\.node-(\d+)\.yaml", path.name)
        node = int(m.group(1)) if m else plan.setup[0].gpu_ids[0] // per_node
        for name, svc in doc["services"].items():
            for dep in svc.get("depends_on", {}):
                assert dep in doc["services"], f"{name} depends on unknown {dep}"
            if svc.get("entrypoint") == ["vllm", "serve"]:
                devices = svc["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
                gpus = tuple(node * per_node + int(d) for d in devices)
                env = {k: str(v) for k, v in svc["environment"].items()}
                engines.append(_launched(name, svc["command"], env, node, gpus))
                host, _, cont = svc["ports"][0].partition(":")
                assert host == cont == _flag(svc["command"], "--port")
                assert "healthcheck" in svc
            elif svc.get("entrypoint") == ["routerwise"]:
                cmd = svc["command"]
                backends += [_backend(cmd[i + 1]) for i, a in enumerate(cmd) if a == "--backend"]
    return Artifacts(engines, backends)


# --- kubernetes ---------------------------------------------------------------------------


def k8s_docs(out: Path) -> list[dict[str, Any]]:
    return [d for p in sorted(out.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
            if d is not None]


def _k8s_engine(dep: dict[str, Any], claims: dict[str, tuple[int, ...]], per_node: int
                ) -> Launched:
    pod = dep["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "vllm"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    node = int(pod["nodeSelector"]["routerwise.io/node"])
    if "claims" in c["resources"]:
        (claim,) = pod["resourceClaims"]
        group = claims[claim["resourceClaimName"]]
        gpus = tuple(group[int(i)] for i in env["CUDA_VISIBLE_DEVICES"].split(","))
    else:
        gpus = tuple(int(g) for g in dep["metadata"]["annotations"]["routerwise.io/gpu-ids"]
                     .split(","))
        assert c["resources"]["limits"]["nvidia.com/gpu"] == len(gpus)
        assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in env
    assert all(g // per_node == node for g in gpus)
    assert pod["containers"][0]["ports"][0]["containerPort"] == int(_flag(c["args"], "--port"))
    return _launched(dep["metadata"]["name"], c["args"], env, node, gpus)


def read_kubernetes(out: Path, plan: Plan) -> Artifacts:
    docs = k8s_docs(out)
    claims = {d["metadata"]["name"]: tuple(
        int(g) for g in d["metadata"]["annotations"]["routerwise.io/gpu-ids"].split(","))
        for d in docs if d["kind"] == "ResourceClaim"}
    for name, gpus in claims.items():
        (claim,) = [d for d in docs if d["metadata"]["name"] == name]
        assert claim["spec"]["devices"]["requests"][0]["exactly"]["count"] == len(gpus)
    deps = [d for d in docs if d["kind"] == "Deployment"]
    per_node = plan.cluster.gpus_per_node
    engines = [_k8s_engine(d, claims, per_node) for d in deps
               if d["metadata"]["labels"]["app.kubernetes.io/component"] == "engine"]
    services = {d["metadata"]["name"]: d["spec"]["ports"][0]["port"] for d in docs
                if d["kind"] == "Service"}
    (gw,) = [d for d in deps if d["metadata"]["labels"]["app.kubernetes.io/component"]
             == "gateway"]
    args = gw["spec"]["template"]["spec"]["containers"][0]["args"]
    backends = [_backend(args[i + 1]) for i, a in enumerate(args) if a == "--backend"]
    for b in backends:
        assert services.get(b.target) == b.port, f"no Service {b.target}:{b.port}"
    return Artifacts(engines, backends)


# --- the consistency checks every target must pass ----------------------------------------


def check_consistent(art: Artifacts, plan: Plan, *, host_ports: bool) -> None:
    """Artifacts match the plan; per GPU nothing exceeds one GPU; backends; ports."""
    placed = sorted((i.model, i.tp, tuple(i.gpu_ids)) for i in plan.setup)
    assert sorted((e.model, e.tp, e.gpus) for e in art.engines) == placed
    shares = {(i.model, tuple(i.gpu_ids)): i.mps_share for i in plan.setup}
    gpu_mib = get_gpu(plan.cluster.gpu_type).memory_gib * 1024
    pct: dict[int, int] = defaultdict(int)
    mem: dict[int, float] = defaultdict(float)
    pinned: dict[int, float] = defaultdict(float)
    for e in art.engines:
        share = shares[(e.model, e.gpus)]
        if share < 1:
            assert e.thread_percentage is not None and e.pinned_mib is not None, e
            assert share * 100 - 1 < e.thread_percentage <= share * 100 + 1e-6, e
        assert e.gpu_memory_utilization <= share * 0.9 + 1e-9, e
        for g in e.gpus:
            pct[g] += e.thread_percentage or 100
            mem[g] += e.gpu_memory_utilization
            pinned[g] += gpu_mib if e.pinned_mib is None else e.pinned_mib
    assert all(v <= 100 for v in pct.values()), pct
    assert all(v <= 1.0 + 1e-9 for v in mem.values()), mem
    assert all(v <= gpu_mib for v in pinned.values()), pinned
    ports: dict[int, list[int]] = defaultdict(list)
    for e in art.engines:
        ports[e.node].append(e.port)
    if host_ports:  # engines share each node's network namespace
        assert all(len(set(p)) == len(p) for p in ports.values()), ports
    routed = {m for m, f in plan.routing.fractions.items() if f > 0}
    assert routed <= {b.model for b in art.backends}, "a routed model has no backend"
    by_port = {(e.node, e.port): e.model for e in art.engines}
    assert len(art.backends) == len(art.engines)
    for b in art.backends:
        assert b.model in {e.model for e in art.engines if e.port == b.port}, b
    assert len(by_port) == len(art.engines)
