"""What the load generator sends: prompts and output lengths drawn from a pool.

A ``PromptPool`` holds prompt texts (or only input lengths, for which synthetic prompts are
made) and optional per-prompt output lengths. Pools come from

* a prompts file: ``.txt`` (one prompt per non-empty line), ``.jsonl`` (one object a line
  with ``prompt`` and optionally ``output_tokens``), ``.json`` (a list of strings or of such
  objects);
* a workload (``Workload``): its prompt texts when it has them, else synthetic prompts of its
  input lengths; output lengths of one model's column when present;
* a fixed input length: synthetic prompts only.

Synthetic prompts start with a unique request number and continue with random common words
(about one token each), so no two share a prefix (a server's prefix cache cannot make them
cheaper than real prompts of that length).

``draw_requests`` samples a pool with replacement from a seeded generator. A fixed
``max_tokens`` overrides the pool's output lengths (what ``--max-tokens`` does, with
``ignore_eos`` where the server supports it, so every request generates that many tokens).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routerwise.errors import InputError
from routerwise.spec.workload import Workload

#: Output tokens asked for when neither ``--max-tokens`` nor the source says.
DEFAULT_OUTPUT_TOKENS = 128

_WORDS = (
    "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world",
    "school", "state", "family", "student", "group", "country", "problem", "hand", "part",
    "place", "case", "week", "company", "system", "program", "question", "work", "government",
    "number", "night", "point", "home", "water", "room", "mother", "area", "money", "story",
    "fact", "month", "lot", "right", "study", "book", "eye", "job", "word", "business", "issue",
    "side", "kind", "head", "house", "service", "friend", "father", "power", "hour", "game",
    "line", "end", "member", "law", "car", "city", "community", "name", "president", "team",
    "minute", "idea", "kid", "body", "information", "back", "parent", "face", "others", "level",
    "office", "door", "health", "person", "art", "war", "history", "party", "result", "change",
    "morning", "reason", "research", "girl", "guy", "moment", "air", "teacher", "force",
)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request: the prompt text and how many tokens to ask for."""

    prompt: str
    max_tokens: int
    input_tokens: int  # known, or estimated (words / chars)


@dataclass(frozen=True, slots=True)
class PromptPool:
    """Prompts (text, or input lengths to synthesise) and optional output lengths."""

    texts: tuple[str, ...] | None
    input_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...] | None
    source: str

    def __post_init__(self) -> None:
        n = len(self.input_tokens)
        if n == 0:
            raise InputError(f"{self.source}: no prompts")
        if self.texts is not None and len(self.texts) != n:
            raise InputError(f"{self.source}: {len(self.texts)} texts for {n} prompts")
        if self.output_tokens is not None and len(self.output_tokens) != n:
            raise InputError(f"{self.source}: {len(self.output_tokens)} output lengths for "
                             f"{n} prompts")
        if min(self.input_tokens) < 1:
            raise InputError(f"{self.source}: input lengths must be >= 1 token")

    def __len__(self) -> int:
        return len(self.input_tokens)


def _approx_tokens(text: str) -> int:
    """A tokenizer-free length estimate: ~4 characters a token."""
    return max(1, math.ceil(len(text) / 4))


def fixed_pool(input_tokens: int) -> PromptPool:
    """Synthetic prompts of ``input_tokens`` tokens each."""
    if input_tokens < 1:
        raise InputError(f"--input-tokens {input_tokens}: must be >= 1")
    return PromptPool(None, (input_tokens,), None, f"synthetic ({input_tokens} input tokens)")


def workload_pool(workload: Workload, model: str | None) -> PromptPool:
    """The workload's prompts (or its input lengths) and ``model``'s output lengths."""
    n = workload.num_prompts
    if workload.prompts is not None:
        texts: tuple[str, ...] | None = workload.prompts
        inputs = tuple(_approx_tokens(t) for t in workload.prompts)
        if workload.input_tokens is not None:
            inputs = tuple(max(1, round(float(v))) for v in workload.input_tokens)
    elif workload.input_tokens is not None:
        texts = None
        inputs = tuple(max(1, round(float(v))) for v in workload.input_tokens)
    else:
        raise InputError(f"{workload.source}: the workload has neither prompt texts nor input "
                         "lengths to send")
    outputs = None
    if workload.output_tokens is not None:
        k = workload.models.index(model) if model in workload.models else None
        col = workload.output_tokens[:, k] if k is not None else \
            workload.output_tokens.mean(axis=1)
        outputs = tuple(max(1, round(float(v))) for v in col)
    assert len(inputs) == n
    return PromptPool(texts, inputs, outputs, workload.source)


def _record(obj: object, where: str) -> tuple[str, int | None]:
    if isinstance(obj, str):
        return obj, None
    if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
        raise InputError(f"{where}: expected a string or an object with a 'prompt' string")
    out = obj.get("output_tokens", obj.get("max_tokens"))
    if out is not None and (not isinstance(out, int) or isinstance(out, bool) or out < 1):
        raise InputError(f"{where}: output_tokens {out!r} must be a positive integer")
    return obj["prompt"], out


def _parse_json_records(path: Path, text: str) -> list[tuple[str, int | None]]:
    if path.suffix.lower() == ".jsonl":
        items: list[tuple[int, object]] = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append((i, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: line {i}: not JSON ({exc.msg})") from None
        return [_record(o, f"{path}: line {i}") for i, o in items]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of prompts")
    return [_record(o, f"{path}: item {i}") for i, o in enumerate(data)]


def load_prompts_file(path: Path) -> PromptPool:
    """A prompts file (``.txt``, ``.jsonl`` or ``.json``; see the module docstring)."""
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".jsonl", ".json"):
        raise InputError(f"--prompts {path}: must end in .txt, .jsonl or .json (a workload "
                         "table goes to --workload)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--prompts {path}: cannot be read: {exc}") from None
    if suffix == ".txt":
        records: list[tuple[str, int | None]] = [
            (line, None) for line in text.splitlines() if line.strip()]
    else:
        records = _parse_json_records(path, text)
    records = [(p, o) for p, o in records if p.strip()]
    if not records:
        raise InputError(f"--prompts {path}: no prompts in the file")
    outs = [o for _, o in records]
    outputs = tuple(int(o) for o in outs if o is not None) if all(
        o is not None for o in outs) else None
    return PromptPool(tuple(p for p, _ in records),
                      tuple(_approx_tokens(p) for p, _ in records), outputs, str(path))


def synthetic_prompt(index: int, tokens: int, rng: np.random.Generator) -> str:
    """A prompt of about ``tokens`` tokens that shares no prefix with another index's."""
    head = f"Request {index}:"
    words = rng.choice(len(_WORDS), size=max(0, tokens - 4))
    return " ".join([head, *(_WORDS[int(w)] for w in words)])


def draw_requests(pool: PromptPool, n: int, rng: np.random.Generator, *,
                  max_tokens: int | None = None, first_index: int = 0) -> tuple[RequestSpec, ...]:
    """``n`` requests sampled with replacement; ``max_tokens`` fixes every output length."""
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"--max-tokens {max_tokens}: must be >= 1")
    picks = rng.integers(0, len(pool), size=n)
    out = []
    for j, k in enumerate(int(i) for i in picks):
        inp = pool.input_tokens[k]
        text = pool.texts[k] if pool.texts is not None else \
            synthetic_prompt(first_index + j, inp, rng)
        if max_tokens is not None:
            want = max_tokens
        elif pool.output_tokens is not None:
            want = pool.output_tokens[k]
        else:
            want = DEFAULT_OUTPUT_TOKENS
        out.append(RequestSpec(text, want, inp))
    return tuple(out)
