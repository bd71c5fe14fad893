"""Stage deploy — a plan turned into what starts it (docs/deploy.md).

Inputs: a typed ``Plan`` (``spec.plan.load_plan``) and deployment options (images, model
paths, ports). Outputs: one typed intermediate description of the deployment
(:mod:`routerwise.deploy.ir`, built by :mod:`routerwise.deploy.build`) rendered by Jinja2
templates, one set per target (:mod:`routerwise.deploy.targets`): ``vllm-script`` (shell
scripts per node), ``compose`` (Docker Compose) and ``kubernetes`` (manifests).
Units: shares are fractions, memory in GiB (MiB where a tool wants MiB), ports are TCP ports.
"""
