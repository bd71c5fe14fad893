"""Serve stage — request bodies (pydantic at the HTTP edge) and OpenAI-format errors.

Only the fields the gateway reads are declared; every other field is kept and forwarded
unchanged (``extra="allow"``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routerwise.errors import InputError


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    stream: bool | None = False
    metadata: dict[str, Any] | None = None

    @property
    def task(self) -> str | None:
        task = (self.metadata or {}).get("task")
        return task if isinstance(task, str) and task else None


class ChatBody(_Body):
    messages: list[dict[str, Any]] = Field(min_length=1)

    def text(self) -> str:
        """The last user message's text (what a predictor scores)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return content_text(self.messages[-1].get("content"))


class CompletionBody(_Body):
    prompt: str | list[Any]

    def text(self) -> str:
        return content_text(self.prompt)


def content_text(value: Any) -> str:
    """Text of a message content, content parts or a prompt list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(content_text(v.get("text", "")) if isinstance(v, dict)
                         else content_text(v) for v in value)
    return ""


class BodyError(InputError):
    """A request body the gateway refuses (400), with the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def parse_body(data: Any, chat: bool) -> ChatBody | CompletionBody:
    if not isinstance(data, dict):
        raise BodyError("the request body must be a JSON object")
    try:
        return ChatBody.model_validate(data) if chat else CompletionBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise BodyError(f"{param}: {first['msg']}" if param else first["msg"], param) from None


def error_body(message: str, kind: str, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
