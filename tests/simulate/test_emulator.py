"""The emulated OpenAI-compatible engine, driven by the official ``openai`` client over real
HTTP (127.0.0.1, a free port, a bounded server that is always shut down).

A synthetic step model (prefill steps 30 ms, decode steps 20 ms) makes the timing exact:
a lone request's first token arrives after one 30 ms step and every further token 20 ms
later; concurrent requests share the same steps (continuous batching)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from routerwise.simulate.emulator import (  # noqa: E402
    EmulatedEngine,
    EmulatorInfo,
    create_app,
    prompt_tokens,
)
from tests.simulate.steps import FixedSteps  # noqa: E402

MODEL = "emulated-8b"
KV_TOKENS = 4096


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    engine = EmulatedEngine(KV_TOKENS, FixedSteps(decode=20.0, mixed=30.0),
                            default_output_tokens=8)
    info = EmulatorInfo(MODEL, "llama-3.1-8b", "H100-SXM", 1, 1.0, engine.kv_capacity_tokens)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine, info), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "emulator did not start"
        assert thread.is_alive(), "emulator thread died"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        assert not thread.is_alive()


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=20)


def test_health_and_models_say_emulator(base_url: str, client: openai.OpenAI) -> None:
    assert httpx.get(f"{base_url}/health", timeout=5).json() == {"status": "ok"}
    models = client.models.list().data
    assert [m.id for m in models] == [MODEL]
    meta = models[0].model_extra["metadata"]  # type: ignore[index]
    assert meta["emulator"] is True and "placeholder" in meta["note"]
    assert meta["kv_capacity_tokens"] == KV_TOKENS
    assert models[0].owned_by == "routerwise-emulator"


def test_chat_completion_usage(client: openai.OpenAI) -> None:
    prompt = "x" * 400
    r = client.chat.completions.create(model=MODEL, max_tokens=5,
                                       messages=[{"role": "user", "content": prompt}])
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "length"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == " tok" * 5
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == \
        (prompt_tokens(prompt), 5, prompt_tokens(prompt) + 5)


def test_chat_stream_delivers_every_token_then_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, max_completion_tokens=6, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " tok" * 6
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == prompt_tokens("be brief" + "hi")


def test_completions_with_and_without_streaming(client: openai.OpenAI) -> None:
    r = client.completions.create(model=MODEL, prompt="abcd" * 10, max_tokens=3)
    assert r.object == "text_completion" and r.choices[0].text == " tok" * 3
    assert r.usage is not None and r.usage.prompt_tokens == 10
    parts = [c.choices[0].text for c in
             client.completions.create(model=MODEL, prompt="abcd", max_tokens=4, stream=True)
             if c.choices]
    assert "".join(parts) == " tok" * 4
    default = client.completions.create(model=MODEL, prompt="abcd")  # no max_tokens
    assert default.usage is not None and default.usage.completion_tokens == 8


def test_errors_are_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="KV cache"):
        client.completions.create(model=MODEL, prompt="x", max_tokens=KV_TOKENS)
    with pytest.raises(openai.BadRequestError, match="n must be 1"):
        client.completions.create(model=MODEL, prompt="x", max_tokens=2, n=2)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=MODEL, messages=[])


def test_tokens_arrive_at_the_engine_models_step_times(client: openai.OpenAI) -> None:
    """One mixed step (30 ms) to the first token, then one decode step (20 ms) per token."""
    sent = time.perf_counter()
    stamps = []
    for c in client.chat.completions.create(model=MODEL, max_tokens=6, stream=True,
                                            messages=[{"role": "user", "content": "hi"}]):
        if c.choices and c.choices[0].delta.content:
            stamps.append(time.perf_counter() - sent)
    assert len(stamps) == 6
    assert 0.030 <= stamps[0] < 0.030 + 0.040
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.020, abs=0.006)
    assert stamps[-1] == pytest.approx(0.030 + 5 * 0.020, abs=0.040)


def test_concurrent_requests_share_one_continuous_batch(base_url: str) -> None:
    """Four requests at once finish together (one batch), not one after the other."""

    async def run() -> list[float]:
        async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0,
                                      timeout=20) as aclient:
            async def one() -> float:
                t = time.perf_counter()
                await aclient.completions.create(model=MODEL, prompt="abcd", max_tokens=10)
                return time.perf_counter() - t

            return list(await asyncio.gather(*(one() for _ in range(4))))

    e2e = asyncio.run(run())
    alone = 0.030 + 9 * 0.020  # one mixed step, then nine decode steps
    assert max(e2e) < 2 * alone  # serialised, the last would take 4× alone
    assert min(e2e) >= alone - 0.005
