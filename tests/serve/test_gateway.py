"""The gateway end to end with the official ``openai`` client (sync and async, streaming
and not) against emulated backends on 127.0.0.1: routing by the plan, pass-through,
metrics, OpenAI errors, and routing shares that match the plan's fractions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest

openai = pytest.importorskip("openai")

from routerwise.serve.app import create_app  # noqa: E402
from routerwise.serve.config import BackendSpec, ControllerConfig, GatewayConfig  # noqa: E402
from routerwise.spec.plan import load_plan  # noqa: E402
from tests.serve.planfixture import LARGE, MODELS, SMALL, ServeFixture  # noqa: E402
from tests.serve.servers import ServerThread, running  # noqa: E402

NO_CONTROL = ControllerConfig(enabled=False)


def config(fx: ServeFixture, urls: dict[str, str], **kw: Any) -> GatewayConfig:
    kw.setdefault("controller", NO_CONTROL)
    kw.setdefault("predictor_dir", fx.predictor_dir)
    return GatewayConfig(plan_path=fx.plan_dir,
                         backends=tuple(BackendSpec(m, u) for m, u in urls.items()), **kw)


@contextmanager
def gateway(fx: ServeFixture, urls: dict[str, str], transports: Any = None,
            **kw: Any) -> Iterator[ServerThread]:
    with running(create_app(config(fx, urls, **kw), transports)) as server:
        yield server


@pytest.fixture(scope="module")
def gw(serve_fixture: ServeFixture, emulators: dict[str, str]) -> Iterator[str]:
    with gateway(serve_fixture, emulators) as server:
        yield server.url


def sdk(url: str, key: str = "none") -> Any:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)


def test_sync_chat_is_routed_and_says_why(gw: str, serve_fixture: ServeFixture) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(
        model="routerwise", max_tokens=3,
        messages=[{"role": "user", "content": serve_fixture.prompts[0]}])
    reply = raw.parse()
    assert reply.choices[0].message.content == " tok" * 3
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    served = raw.headers["x-routerwise-model"]
    assert served in MODELS and reply.model == served
    scores = dict(kv.split("=") for kv in raw.headers["x-routerwise-scores"].split(","))
    assert set(scores) == set(MODELS)
    np.testing.assert_allclose([float(scores[m]) for m in MODELS], serve_fixture.scores[0],
                               atol=1e-4)
    assert raw.headers["x-routerwise-score-source"] == "predictor"
    assert 0 <= float(raw.headers["x-routerwise-overhead-ms"]) < 1000


def test_sync_stream_passes_every_chunk(gw: str) -> None:
    stream = sdk(gw).chat.completions.create(
        model="auto", max_tokens=5, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "prove the integral theorem hard hard"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " tok" * 5
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_async_completions_streaming_and_not(gw: str) -> None:
    async def run() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=f"{gw}/v1", api_key="x", max_retries=0,
                                    timeout=20)
        plain = await client.completions.create(model="routerwise", prompt="hello weather",
                                                max_tokens=2)
        parts = [c.choices[0].text async for c in await client.completions.create(
            model=SMALL, prompt="hello", max_tokens=4, stream=True)]
        await client.close()
        return plain.choices[0].text, "".join(parts)

    plain, streamed = asyncio.run(run())
    assert plain == " tok" * 2
    assert streamed == " tok" * 4


def test_named_model_goes_straight_there(gw: str) -> None:
    for model in MODELS:
        raw = sdk(gw).chat.completions.with_raw_response.create(
            model=model, max_tokens=1, messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-routerwise-model"] == model
        assert "x-routerwise-scores" not in raw.headers
        assert raw.parse().model == model


def test_models_health_and_metrics(gw: str) -> None:
    ids = [m.id for m in sdk(gw).models.list().data]
    assert ids == ["routerwise", *MODELS]
    health = httpx.get(f"{gw}/health").json()
    assert health["status"] == "ok" and set(health["backends"]) == set(MODELS)
    sdk(gw).chat.completions.create(model="routerwise", max_tokens=2, stream=True,
                                    messages=[{"role": "user", "content": "x"}]).close()
    text = httpx.get(f"{gw}/metrics").text
    for name in ("routerwise:time_to_first_token_seconds_bucket{",
                 "routerwise:e2e_request_latency_seconds_count{model_name=",
                 "routerwise:num_requests_running{model_name=",
                 "routerwise:routing_price{model_name=", "routerwise:slo_slack_ms",
                 "routerwise:queue_depth", "routerwise:score_source_total{source=\"predictor\"}",
                 "routerwise:requests_total{code=\"200\""):
        assert name in text, name


def test_request_ids_are_echoed_or_made(gw: str) -> None:
    body = {"model": "routerwise", "max_tokens": 1,
            "messages": [{"role": "user", "content": "x"}]}
    url = f"{gw}/v1/chat/completions"
    given = httpx.post(url, json=body, headers={"x-request-id": "abc-123"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "abc-123"
    for bad in ("x" * 129, "tab\there"):
        made = httpx.post(url, json=body, headers={"x-request-id": bad})
        assert made.status_code == 200 and len(made.headers["x-request-id"]) == 32
    refused = httpx.post(url, content=b"{", headers={"x-request-id": "e-1"})
    assert refused.status_code == 400 and refused.headers["x-request-id"] == "e-1"


def test_errors_use_openai_bodies(gw: str) -> None:
    url = f"{gw}/v1/chat/completions"
    bad_json = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    missing = httpx.post(url, json={"model": "routerwise"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        sdk(gw).chat.completions.create(model="gpt-9", messages=[{"role": "user",
                                                                  "content": "x"}])
    big = httpx.post(url, content=b"x" * (5 * 1024 * 1024))
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


def test_httpx_transport_serves_alike(serve_fixture: ServeFixture,
                                      emulators: dict[str, str]) -> None:
    """``lean_transport=False``: completions go through httpx's own transport, same answers."""
    with gateway(serve_fixture, emulators, lean_transport=False) as server:
        stream = sdk(server.url).chat.completions.create(
            model="routerwise", max_tokens=3, stream=True,
            messages=[{"role": "user", "content": "x"}])
        assert "".join(c.choices[0].delta.content or "" for c in stream) == " tok" * 3
        reply = sdk(server.url).completions.create(model=MODELS[0], max_tokens=2, prompt="x")
        assert reply.choices[0].text == " tok" * 2


def test_api_key_is_required_when_configured(serve_fixture: ServeFixture,
                                             emulators: dict[str, str]) -> None:
    with gateway(serve_fixture, emulators, api_key="s3cret") as server:
        with pytest.raises(openai.AuthenticationError):
            sdk(server.url, "wrong").chat.completions.create(
                model="routerwise", messages=[{"role": "user", "content": "x"}])
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        ok = sdk(server.url, "s3cret").chat.completions.create(
            model="routerwise", max_tokens=1, messages=[{"role": "user", "content": "x"}])
        assert ok.choices[0].message.content == " tok"


def test_shares_match_the_plans_fractions(gw: str, serve_fixture: ServeFixture) -> None:
    """Every prompt of the plan's workload once (the plan's mix) at a bounded concurrency."""
    plan = load_plan(serve_fixture.plan_dir)

    async def run() -> list[str]:
        sem = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=gw, timeout=20) as client:
            async def one(prompt: str) -> str:
                async with sem:
                    r = await client.post("/v1/chat/completions", json={
                        "model": "routerwise", "max_tokens": 1,
                        "messages": [{"role": "user", "content": prompt}]})
                    assert r.status_code == 200, r.text
                    return r.headers["x-routerwise-model"]
            return await asyncio.gather(*(one(p) for p in serve_fixture.prompts))

    served = asyncio.run(run())
    for model in MODELS:
        share = served.count(model) / len(served)
        planned = plan.routing.fractions[model]
        print(f"{model}: share {share:.4f} vs plan {planned:.4f}")
        assert abs(share - planned) <= 0.03, (model, share, planned)
    assert min(plan.routing.fractions[m] for m in MODELS) > 0.2  # both models really used


def test_prior_and_task_hint_are_counted(serve_fixture: ServeFixture,
                                         emulators: dict[str, str]) -> None:
    with gateway(serve_fixture, emulators, predictor_dir=None) as server:
        raw = sdk(server.url).chat.completions.with_raw_response.create(
            model="routerwise", max_tokens=1, messages=[{"role": "user", "content": "x"}])
        assert raw.headers["x-routerwise-score-source"] == "prior"
        text = httpx.get(f"{server.url}/metrics").text
        assert 'routerwise:score_source_total{source="prior"} 1.0' in text
    assert json.loads((serve_fixture.plan_dir / "plan.json").read_text())["feasible"]
    assert LARGE in MODELS
