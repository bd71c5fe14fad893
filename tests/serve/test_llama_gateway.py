"""The gateway in front of a real engine (issue 11, must-show 1): the official ``openai``
SDK, sync and async, streaming and not, through ``routerwise serve``'s app to llama.cpp's
OpenAI-compatible server running SmolLM2-135M-Instruct (the profiling tests' server,
``tests/profiles/test_llama_e2e.py``, reused as is).

Both of the small test plan's models are pointed at the one llama.cpp server: the gateway
learns from ``/v1/models`` that it serves them as ``smollm2`` and rewrites the model name;
``smollm2`` itself is a third backend, reachable by name and never routed. Skips (saying
why) without ``llama-cpp-python[server]`` and the GGUF file (``make llama``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

openai = pytest.importorskip("openai")

from tests.profiles import test_llama_e2e as llama  # noqa: E402
from tests.serve.planfixture import MODELS, ServeFixture  # noqa: E402
from tests.serve.test_gateway import gateway, sdk  # noqa: E402

pytestmark = [pytest.mark.llama, pytest.mark.slow]

llama_server = llama.llama_server  # the module-scoped fixture that starts llama.cpp
MAX_TOKENS = 6
MESSAGES = [{"role": "user", "content": "Name one colour."}]


@pytest.fixture(scope="module")
def gw(serve_fixture: ServeFixture, llama_server: str) -> Iterator[str]:
    urls = dict.fromkeys(MODELS, llama_server) | {llama.MODEL: llama_server}
    with gateway(serve_fixture, urls, first_token_timeout_s=120.0) as server:
        yield server.url


def _served(raw: Any) -> str:
    served = raw.headers["x-routerwise-model"]
    assert served in MODELS, served
    assert raw.headers["x-routerwise-score-source"] == "predictor"
    assert raw.headers["x-request-id"]
    return str(served)


def test_sync_chat_routed_to_smollm2(gw: str) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(
        model="routerwise", max_tokens=MAX_TOKENS, messages=MESSAGES, temperature=0)
    _served(raw)
    reply = raw.parse()
    assert reply.choices[0].message.content  # SmolLM2 said something
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= MAX_TOKENS


def test_sync_chat_stream_routed_to_smollm2(gw: str) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(
        model="auto", max_tokens=MAX_TOKENS, messages=MESSAGES, stream=True, temperature=0)
    _served(raw)
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_async_completions_streaming_and_not(gw: str) -> None:
    async def run() -> tuple[str, str, str]:
        client = openai.AsyncOpenAI(base_url=f"{gw}/v1", api_key="x", max_retries=0,
                                    timeout=120)
        plain = await client.completions.create(model="routerwise", prompt="The sky is",
                                                max_tokens=MAX_TOKENS, temperature=0)
        parts = [c.choices[0].text async for c in await client.completions.create(
            model="routerwise", prompt="One, two,", max_tokens=MAX_TOKENS, stream=True,
            temperature=0)]
        chat = await client.chat.completions.create(model=llama.MODEL, messages=MESSAGES,
                                                    max_tokens=MAX_TOKENS, temperature=0)
        await client.close()
        return plain.choices[0].text, "".join(parts), chat.choices[0].message.content or ""

    plain, streamed, named = asyncio.run(run())
    assert plain and streamed and named


def test_named_backend_and_models_list(gw: str) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(
        model=llama.MODEL, max_tokens=2, messages=MESSAGES)
    assert raw.headers["x-routerwise-model"] == llama.MODEL
    assert "x-routerwise-scores" not in raw.headers
    assert [m.id for m in sdk(gw).models.list().data] == ["routerwise", *MODELS, llama.MODEL]
    listed = {m["id"]: m for m in httpx.get(f"{gw}/v1/models").json()["data"]}
    assert all(listed[m]["metadata"]["served_name"] == llama.MODEL for m in MODELS)
    health = httpx.get(f"{gw}/health").json()  # probed on /v1/models: llama.cpp has no /health
    assert health["status"] == "ok"
    assert all(b["healthy"] for b in health["backends"].values()), health
