"""Stage deploy — deployment targets: a ``Protocol`` and an explicit name → target registry.

Inputs: a :class:`~routerwise.deploy.ir.DeploymentIR` and the plan file's text. Outputs:
relative file name → :class:`RenderedFile` (text, executable bit), rendered from the
target's Jinja2 templates (``routerwise/deploy/templates/<target>/``), plus the target's own
notes for ``deploy --check`` (what it can express exactly, what it rounds, what it assumes).

* ``vllm-script`` — per node ``node-N.sh`` (MPS control daemons where a GPU is shared, one
  ``vllm serve`` per engine), ``gateway.sh`` (``routerwise serve``), ``stop.sh``,
  ``common.sh``, ``plan.json``, ``README.md``.
* ``compose`` — ``compose.yaml`` (``compose.node-N.yaml`` per node when the plan spans
  nodes): GPU device reservations, MPS daemon services, health checks, the gateway.
* ``kubernetes`` — ``engines.yaml`` (a Deployment and Service per engine), ``gpu-claims.yaml``
  (a DRA ResourceClaim with MPS sharing per group of shared GPUs), ``gateway.yaml``
  (Deployment, Service) and ``plan-configmap.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from routerwise.deploy.ir import Backend, DeploymentIR, Engine
from routerwise.deploy.render import render


@dataclass(frozen=True, slots=True)
class RenderedFile:
    text: str
    executable: bool = False


Files = dict[str, RenderedFile]


class Target(Protocol):
    """A way to start a deployment: renders files and says what it can express."""

    name: str
    summary: str

    def files(self, ir: DeploymentIR, plan_text: str) -> Files: ...

    def notes(self, ir: DeploymentIR) -> tuple[str, ...]: ...


# --- helpers shared by the templates ------------------------------------------------------


def vllm_args(e: Engine, ir: DeploymentIR) -> list[str]:
    """``vllm serve`` arguments of an engine (without ``--host``)."""
    f = ir.flags
    return [
        e.model_path, "--served-model-name", e.model,
        "--port", str(e.port),
        "--tensor-parallel-size", str(e.tp),
        "--gpu-memory-utilization", f"{e.memory.gpu_memory_utilization:g}",
        "--max-model-len", str(f.max_model_len),
        "--max-num-seqs", str(f.max_num_seqs),
        "--max-num-batched-tokens", str(f.max_num_batched_tokens),
        "--block-size", str(f.block_size),
    ]


def vllm_arg_lines(e: Engine, ir: DeploymentIR) -> list[str]:
    """The flags of :func:`vllm_args` two by two (one ``--flag value`` per script line)."""
    import shlex

    flags = [shlex.quote(a) for a in vllm_args(e, ir)[1:]]
    return [f"{flags[i]} {flags[i + 1]}" for i in range(0, len(flags), 2)]


def pinned_limit(e: Engine) -> str:
    """``CUDA_MPS_PINNED_DEVICE_MEM_LIMIT``: per device ordinal the client sees (0..tp-1)."""
    return ",".join(f"{k}={e.memory.pinned_limit_mib}M" for k in range(e.tp))


def node_host_var(node: int) -> str:
    return f"ROUTERWISE_NODE_{node}_HOST"


def gateway_node(ir: DeploymentIR) -> int:
    """The gateway runs on the first node that hosts an engine."""
    return ir.nodes[0].index


def _context(ir: DeploymentIR, target: str, **extra: Any) -> dict[str, Any]:
    return {"ir": ir, "target": target, "vllm_args": vllm_args, "pinned_limit": pinned_limit,
            "vllm_arg_lines": vllm_arg_lines,
            "gateway_node": gateway_node(ir), "node_host_var": node_host_var, **extra}


def _readme(ir: DeploymentIR, target: Target, files: Files) -> RenderedFile:
    ctx = _context(ir, target.name, summary=target.summary, notes=target.notes(ir),
                   files=sorted([*files, "README.md"]))
    return RenderedFile(render("common/README.md.j2", **ctx))


# --- vllm-script --------------------------------------------------------------------------


def _script_backend(b: Backend, ir: DeploymentIR) -> str:
    """A shell word ``MODEL=URL``; a remote node's address comes from its variable."""
    import shlex

    host = "127.0.0.1" if b.node == gateway_node(ir) else "${" + node_host_var(b.node) + "}"
    return shlex.quote(f"{b.model}=") + f'"http://{host}:{b.port}"'


class VllmScriptTarget:
    name = "vllm-script"
    summary = "bash scripts: one per node starting MPS daemons and vLLM engines, the gateway, stop"

    def files(self, ir: DeploymentIR, plan_text: str) -> Files:
        ctx = _context(ir, self.name, backend_arg=_script_backend)
        out: Files = {"common.sh": RenderedFile(render("vllm-script/common.sh.j2", **ctx))}
        for node in ir.nodes:
            out[f"node-{node.index}.sh"] = RenderedFile(
                render("vllm-script/node.sh.j2", node=node, **ctx), executable=True)
        out["gateway.sh"] = RenderedFile(render("vllm-script/gateway.sh.j2", **ctx), True)
        out["stop.sh"] = RenderedFile(render("vllm-script/stop.sh.j2", **ctx), True)
        out[ir.gateway.plan_file] = RenderedFile(plan_text)
        out["README.md"] = _readme(ir, self, out)
        return out

    def notes(self, ir: DeploymentIR) -> tuple[str, ...]:
        return (
            "GPU ids are the plan's own on each node, in nvidia-smi's (PCI bus) order "
            "(CUDA_DEVICE_ORDER=PCI_BUS_ID); MPS clients name their GPUs by UUID, looked up "
            "with nvidia-smi when the script runs, as NVIDIA recommends under MPS",
            "shares are expressed exactly up to whole percent (thread percentage) and whole "
            "MiB (pinned memory); one MPS control daemon per group of shared GPUs",
            "the gateway command follows issue 11's contract (routerwise serve --plan PLAN "
            "--backend MODEL=URL ...; replicas of a model repeat MODEL); the gateway is not "
            "built yet",
        )


# --- compose ------------------------------------------------------------------------------


def _compose_backend(b: Backend, ir: DeploymentIR) -> str:
    if b.node == gateway_node(ir):
        return f"{b.model}=http://{b.engine}:{b.port}"
    var = node_host_var(b.node)
    return f"{b.model}=http://${{{var}:?set {var} to the address of node {b.node}}}:{b.port}"


class ComposeTarget:
    name = "compose"
    summary = "Docker Compose: GPU device reservations, MPS daemon services, health checks"

    def files(self, ir: DeploymentIR, plan_text: str) -> Files:
        ctx = _context(ir, self.name, backend_arg=_compose_backend)
        out: Files = {}
        for node in ir.nodes:
            name = f"compose.node-{node.index}.yaml" if ir.multi_node else "compose.yaml"
            out[name] = RenderedFile(render("compose/compose.yaml.j2", node=node, **ctx))
        out[ir.gateway.plan_file] = RenderedFile(plan_text)
        out["README.md"] = _readme(ir, self, out)
        return out

    def notes(self, ir: DeploymentIR) -> tuple[str, ...]:
        return (
            "GPUs are reserved by the plan's device ids on each node; an MPS daemon service "
            "per group of shared GPUs, whose pipe directory its clients mount (same UID, host "
            "IPC namespace)",
            "shares are expressed exactly up to whole percent and whole MiB",
            "the gateway service runs `routerwise serve` (issue 11's contract; not built yet) "
            "from --gateway-image, which you build from this repository",
        )


# --- kubernetes ---------------------------------------------------------------------------


def _k8s_backend(b: Backend, ir: DeploymentIR) -> str:
    return f"{b.model}=http://{b.engine}:{b.port}"


class KubernetesTarget:
    name = "kubernetes"
    summary = "Kubernetes manifests: Deployments, Services, DRA claims for MPS, the gateway"

    def files(self, ir: DeploymentIR, plan_text: str) -> Files:
        ctx = _context(ir, self.name, backend_arg=_k8s_backend)
        out: Files = {
            "plan-configmap.yaml": RenderedFile(
                render("kubernetes/plan-configmap.yaml.j2", plan_text=plan_text, **ctx)),
            "engines.yaml": RenderedFile(render("kubernetes/engines.yaml.j2", **ctx)),
            "gateway.yaml": RenderedFile(render("kubernetes/gateway.yaml.j2", **ctx)),
        }
        if ir.groups:
            out["gpu-claims.yaml"] = RenderedFile(render("kubernetes/gpu-claims.yaml.j2", **ctx))
        out["README.md"] = _readme(ir, self, out)
        return out

    def notes(self, ir: DeploymentIR) -> tuple[str, ...]:
        notes = [
            "nodes are chosen by the label routerwise.io/node=N (label your GPU nodes); on a "
            "node the device plugin or DRA driver picks the physical GPUs, so the plan's GPU "
            "ids are placement slots: engines that share a GPU in the plan share one here",
            "whole-GPU engines request nvidia.com/gpu (the NVIDIA device plugin)",
        ]
        if ir.groups:
            notes.append(
                "shared GPUs: the device plugin's MPS sharing (sharing.mps.resources[].replicas)"
                " gives every pod the same 1/N of a GPU and cannot express unequal shares such "
                "as 60% + 40%; instead each group of shared GPUs is one DRA ResourceClaim "
                "(NVIDIA's DRA driver, device class gpu.nvidia.com, MPS sharing: one MPS daemon "
                "per claim) that every engine of the group references, and each pod limits "
                "itself with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE and "
                "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: exact up to whole percent and whole MiB. "
                "Needs Kubernetes >= 1.34 (resource.k8s.io/v1) and the DRA driver managing "
                "those nodes' shared GPUs")
        return tuple(notes)


TARGETS: Mapping[str, Target] = MappingProxyType({
    t.name: t for t in (VllmScriptTarget(), ComposeTarget(), KubernetesTarget())
})


def render_target(name: str, ir: DeploymentIR, plan_text: str) -> Files:
    """Every file of target ``name`` for ``ir``."""
    return TARGETS[name].files(ir, plan_text)
