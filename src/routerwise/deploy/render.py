"""Stage deploy — the Jinja2 environment every target renders its templates with.

Inputs: a template name under ``routerwise/deploy/templates/<target>/`` and a context.
Outputs: text. Undefined names are errors (``StrictUndefined``), never empty strings.
Filters: ``sh`` (a shell word, quoted only when it must be), ``q`` (a YAML/JSON double-quoted
scalar), ``pct`` (a share as ``60%``). Jinja2 is imported on first use (no work at import time).
"""

from __future__ import annotations

import json
import shlex
from functools import cache
from typing import TYPE_CHECKING, Any

from routerwise.spec.deployment import share_label

if TYPE_CHECKING:
    from jinja2 import Environment


def yaml_quote(value: Any) -> str:
    """A double-quoted scalar (valid YAML and JSON) for any string or number."""
    return json.dumps(str(value), ensure_ascii=False)


@cache
def environment() -> Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("routerwise.deploy", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # shell scripts and YAML, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sh"] = lambda v: shlex.quote(str(v))
    env.filters["q"] = yaml_quote
    env.filters["pct"] = share_label
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` (``"<target>/<file>.j2"``) with ``context``."""
    return environment().get_template(template).render(**context)
