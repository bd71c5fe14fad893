"""Simulate stage — an emulated OpenAI-compatible engine: one vLLM-like instance in real time.

Inputs: an instance shape (model, GPU, tp, MPS share) — or any ``StepModel`` and a KV capacity
— and HTTP requests. Outputs: OpenAI-compatible responses whose *timing* is the engine model's
(``profiles/engine_sim.Engine``, the estimator's and the simulator's engine model) played
against the wall clock, and whose *text* is placeholder (``" tok"`` per token).

Requests join one continuous batch: the engine advances one step at a time (a decode jump
of exactly one step), sleeps until the step's end on the monotonic clock, then hands each
running request the tokens that step produced; streaming responses send them at once. A
request generates exactly ``max_tokens`` (chat: ``max_completion_tokens`` or ``max_tokens``)
tokens, as vLLM does with ``ignore_eos``, else ``default_output_tokens``. Prompt length in
tokens is the prompt text's characters / 4 (the workload readers' rule; chat: the messages'
contents), at least 1. ``usage`` carries both counts.

Endpoints: ``POST /v1/chat/completions`` and ``POST /v1/completions`` (``stream`` true or
false, ``stream_options.include_usage``), ``GET /v1/models`` (whose entry says it is an
emulator and of what), ``GET /health``. Errors use OpenAI's ``{"error": {...}}`` body.
Limits: ``n`` = 1 only; no logprobs; a client that disconnects does not abort its request
(vLLM would). fastapi and uvicorn are imported only when an app is built or served (the
``serve`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routerwise.errors import InputError
from routerwise.profiles.engine_sim import Engine, EngineConfig, StepModel

if TYPE_CHECKING:
    from fastapi import FastAPI

CHARS_PER_TOKEN = 4
PLACEHOLDER_TOKEN = " tok"
DEFAULT_OUTPUT_TOKENS = 128


@dataclass(frozen=True, slots=True)
class EmulatorInfo:
    """What ``/v1/models`` says about the emulated instance."""

    served_name: str
    model: str
    gpu: str
    tp: int
    mps_share: float
    kv_capacity_tokens: int

    def metadata(self) -> dict[str, Any]:
        return {
            "emulator": True,
            "note": "RouterWise emulator: one vLLM-like instance whose timing comes from the "
                    "engine model (aiconfigurator kernel data + continuous batching); the "
                    "text is placeholder. Not a language model.",
            "model": self.model, "gpu": self.gpu, "tp": self.tp, "mps_share": self.mps_share,
            "kv_capacity_tokens": self.kv_capacity_tokens,
        }


def prompt_tokens(text: str) -> int:
    """Tokens of a prompt: characters / 4, at least 1."""
    return max(1, round(len(text) / CHARS_PER_TOKEN))


class _Live:
    """One request in flight: tokens are put on ``queue`` as steps produce them; None ends."""

    __slots__ = ("output_tokens", "queue", "rid", "sent")

    def __init__(self, rid: int, output_tokens: int) -> None:
        self.rid, self.output_tokens, self.sent = rid, output_tokens, 0
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()


class EmulatedEngine:
    """The engine model driven by the wall clock (create and run inside one event loop)."""

    def __init__(self, kv_capacity_tokens: int, steps: StepModel,
                 config: EngineConfig | None = None,
                 default_output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> None:
        if default_output_tokens < 1:
            raise InputError(f"default_output_tokens={default_output_tokens} must be >= 1")
        self.config = config or EngineConfig()
        self.engine = Engine(kv_capacity_tokens, self.config, steps)
        self.default_output_tokens = default_output_tokens
        self._live: dict[int, _Live] = {}
        self._epoch = time.monotonic()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def kv_capacity_tokens(self) -> int:
        return self.engine.cap

    def now_s(self) -> float:
        return time.monotonic() - self._epoch

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the stepping loop in the running event loop."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- requests ----------------------------------------------------------------------
    def check(self, input_tokens: int, output_tokens: int) -> None:
        """A request must fit the KV cache (an ``InputError`` says why not)."""
        if input_tokens + output_tokens > self.engine.cap:
            raise InputError(f"prompt ({input_tokens} tokens) + max_tokens ({output_tokens}) "
                             f"exceed this instance's KV cache of {self.engine.cap} tokens")

    def submit(self, input_tokens: int, output_tokens: int,
               arrived_s: float | None = None) -> _Live:
        """Queue a request that reached the server at ``arrived_s`` (default: now; never
        before an earlier submission); its tokens arrive on the returned handle's queue."""
        self.check(input_tokens, output_tokens)
        if self._wake is None:
            raise RuntimeError("EmulatedEngine.start() was not called in this event loop")
        eng = self.engine
        at = self.now_s() if arrived_s is None else arrived_s
        if eng.arr:
            at = max(at, eng.arr[-1])
        rid = eng.submit(at, input_tokens, output_tokens)
        live = _Live(rid, output_tokens)
        self._live[rid] = live
        self._wake.set()
        return live

    async def tokens(self, live: _Live) -> AsyncIterator[int]:
        """New tokens of ``live`` as they are produced: the count of each step, or of every
        step not yet taken when the consumer fell behind (one chunk, not many)."""
        done = False
        while not done:
            n = await live.queue.get()
            if n is None:
                return
            while not live.queue.empty():
                more = live.queue.get_nowait()
                if more is None:
                    done = True
                    break
                n += more
            yield n

    # -- the loop ----------------------------------------------------------------------
    def _publish(self) -> None:
        eng = self.engine
        for rid, live in list(self._live.items()):
            n = eng.generated(rid)
            if n > live.sent:
                live.queue.put_nowait(n - live.sent)
                live.sent = n
            if not math.isnan(eng.e2e[rid]):
                live.queue.put_nowait(None)
                del self._live[rid]

    async def _loop(self) -> None:
        assert self._wake is not None
        eng = self.engine
        while True:
            if not eng.has_work():
                self._wake.clear()
                await self._wake.wait()
                continue
            # Exactly one step (a decode jump of one), on the engine's own timeline: steps
            # follow each other back to back in model time and the loop sleeps until each
            # ends, so wake-up jitter delays delivery a little but never accumulates.
            eng.step(until_s=eng.t)
            delay = eng.t - self.now_s()
            await asyncio.sleep(max(delay, 0.0))  # 0: catch up, still letting handlers run
            self._publish()


def emulated_engine(model: str, gpu: str, tp: int, mps_share: float,
                    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS
                    ) -> tuple[EmulatedEngine, EmulatorInfo]:
    """The emulated instance of a catalog model on a catalog GPU (step times from
    aiconfigurator, slowed by the MPS share and, below a whole GPU, by the estimator's
    assumed busy co-runner: ``InstanceShape.profile_steps``)."""
    from routerwise.profiles.estimator import InstanceShape
    from routerwise.spec.catalog import get_gpu, get_model

    shape = InstanceShape(get_model(model), get_gpu(gpu), tp, mps_share)
    steps = shape.profile_steps()  # as profiled: below a whole GPU, next to a busy co-runner
    steps.mixed_ms([(16, 16)], 1, 16)  # the first query loads aiconfigurator's data (~0.5 s):
    steps.decode_ms(1, 16)  # do it before serving, not inside the first request's step
    engine = EmulatedEngine(shape.kv_capacity_tokens(), steps, shape.engine,
                            default_output_tokens)
    info = EmulatorInfo(shape.model.id, shape.model.id, shape.gpu.name, tp, mps_share,
                        engine.kv_capacity_tokens)
    return engine, info


# ---------------------------------------------------------------------------- HTTP shell


def _error(status: int, message: str, kind: str = "invalid_request_error",
           param: str | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={
        "error": {"message": message, "type": kind, "param": param, "code": None}})


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts or a batch of one prompt
        return "".join(_text(v.get("text", "")) if isinstance(v, dict) else _text(v)
                       for v in value)
    return "" if value is None else str(value)


def _usage(inp: int, out: int) -> dict[str, int]:
    return {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}


@dataclass(frozen=True, slots=True)
class _Call:
    """One parsed request."""

    chat: bool
    model: str
    input_tokens: int
    output_tokens: int
    stream: bool
    include_usage: bool
    rid: str
    created: int
    arrived_s: float  # when the request reached the server (the engine's clock)


class _BadRequestError(Exception):
    """A request the emulator refuses, answered with OpenAI's error body."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.param, self.kind = status, param, kind

    def response(self) -> Any:
        return _error(self.status, str(self), self.kind, self.param)


def _prompt(body: dict[str, Any], chat: bool) -> tuple[str, Any]:
    """The prompt text and the requested output length (None: not given)."""
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequestError(400, "messages must be a non-empty list", "messages")
        text = "".join(_text(m.get("content")) for m in messages if isinstance(m, dict))
        return text, body.get("max_completion_tokens") or body.get("max_tokens")
    if "prompt" not in body:
        raise _BadRequestError(400, "prompt is required", "prompt")
    return _text(body.get("prompt")), body.get("max_tokens")


def _parse(body: Any, chat: bool, engine: EmulatedEngine, served: str,
           arrived_s: float) -> _Call:
    """The request; a ``_BadRequestError`` says what is wrong with it."""
    if not isinstance(body, dict):
        raise _BadRequestError(400, "the request body must be a JSON object")
    model = body.get("model")
    if model != served:
        raise _BadRequestError(404, f"The model `{model}` does not exist; this emulator serves "
                          f"`{served}`", "model", "NotFoundError")
    if body.get("n", 1) not in (None, 1):
        raise _BadRequestError(400, "n must be 1 (the emulator generates one choice)", "n")
    text, limit = _prompt(body, chat)
    out = engine.default_output_tokens if limit is None else limit
    if not isinstance(out, int) or isinstance(out, bool) or out < 1:
        raise _BadRequestError(400, f"max_tokens {limit!r} must be a positive integer",
                               "max_tokens")
    inp = prompt_tokens(text)
    try:
        engine.check(inp, out)
    except InputError as exc:
        raise _BadRequestError(400, str(exc), "max_tokens") from None
    options = body.get("stream_options") or {}
    return _Call(chat=chat, model=served, input_tokens=inp, output_tokens=out,
                 stream=bool(body.get("stream")),
                 include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
                 rid=("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
                 created=int(time.time()), arrived_s=arrived_s)


def _choice(call: _Call, text: str, finish: str | None, final: bool) -> dict[str, Any]:
    if not call.chat:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
    if final:
        return {"index": 0, "message": {"role": "assistant", "content": text},
                "logprobs": None, "finish_reason": finish}
    return {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": finish}


def _envelope(call: _Call, choices: list[dict[str, Any]], chunk: bool) -> dict[str, Any]:
    kind = ("chat.completion.chunk" if chunk else "chat.completion") if call.chat \
        else "text_completion"
    return {"id": call.rid, "object": kind, "created": call.created, "model": call.model,
            "choices": choices}


async def _complete(call: _Call, engine: EmulatedEngine) -> dict[str, Any]:
    live = engine.submit(call.input_tokens, call.output_tokens, call.arrived_s)
    total = 0
    async for n in engine.tokens(live):
        total += n
    body = _envelope(call, [_choice(call, PLACEHOLDER_TOKEN * total, "length", True)], False)
    body["usage"] = _usage(call.input_tokens, total)
    return body


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


_SENTINEL = "\u0000routerwise\u0000"


def _chunk_template(call: _Call) -> tuple[str, str]:
    """The SSE line of a content chunk split around its text (the text needs no escaping),
    so a chunk costs one string join instead of a JSON encoding."""
    text = _sse(_envelope(call, [_choice(call, _SENTINEL, None, False)], True))
    marker = json.dumps(_SENTINEL)[1:-1]
    prefix, _, suffix = text.partition(marker)
    return prefix, suffix


async def _stream(call: _Call, engine: EmulatedEngine) -> AsyncIterator[str]:
    live = engine.submit(call.input_tokens, call.output_tokens, call.arrived_s)
    if call.chat:
        first = _envelope(call, [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                  "logprobs": None, "finish_reason": None}], True)
        yield _sse(first)
    prefix, suffix = _chunk_template(call)
    total = 0
    async for n in engine.tokens(live):
        total += n
        yield prefix + PLACEHOLDER_TOKEN * n + suffix
    yield _sse(_envelope(call, [_choice(call, "", "length", False)], True))
    if call.include_usage:
        last = _envelope(call, [], True)
        last["usage"] = _usage(call.input_tokens, total)
        yield _sse(last)
    yield "data: [DONE]\n\n"


def create_app(engine: EmulatedEngine, info: EmulatorInfo) -> FastAPI:
    """The OpenAI-compatible FastAPI app around ``engine`` (its loop runs with the app).

    The completion endpoints are plain Starlette routes and their streams skip Starlette's
    disconnect listener (a task group per response): the emulator's own CPU per request
    is what a load test running it next to the system under test pays for, and a client
    that leaves does not abort its request anyway (see the module docstring)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse

    class _Stream(StreamingResponse):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.stream_response(send)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        await engine.stop()

    app = FastAPI(title="RouterWise emulator", lifespan=lifespan)
    created = int(time.time())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        entry = {"id": info.served_name, "object": "model", "created": created,
                 "owned_by": "routerwise-emulator", "metadata": info.metadata()}
        return {"object": "list", "data": [entry]}

    async def handle(request: Request, chat: bool) -> Response:
        arrived = engine.now_s()  # TTFT counts from here, as a server measures it
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "the request body is not valid JSON")  # type: ignore[no-any-return]
        try:
            call = _parse(body, chat, engine, info.served_name, arrived)
        except _BadRequestError as exc:
            return exc.response()  # type: ignore[no-any-return]
        if call.stream:
            return _Stream(_stream(call, engine), media_type="text/event-stream")
        return JSONResponse(await _complete(call, engine))

    async def chat_completions(request: Request) -> Response:
        return await handle(request, chat=True)

    async def completions(request: Request) -> Response:
        return await handle(request, chat=False)

    app.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_route("/v1/completions", completions, methods=["POST"])
    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
