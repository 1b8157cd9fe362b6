"""`LLMResource`: a local Ollama server spoken to over its HTTP API, off unless configured.

Endpoints used (https://github.com/ollama/ollama/blob/main/docs/api.md):
- `GET /api/tags`: the models the server has; `check_model` fails naming the model when it is absent.
- `POST /api/chat`: `format` is a JSON schema (Ollama's structured outputs) or "json". With
  `stream: true` the body is NDJSON: chunks with `done: false` carry `message.content` pieces and
  the last one (`done: true`) carries `done_reason` and the counts/durations (nanoseconds).

HTTP client: plain `httpx`, not `sources.client.SourceClient`. That client is GET-only and reads
whole bodies (no streamed POST), and its per-source request budget, Retry-After caps and API-key
handling are built for rate-limited third-party APIs; a loopback model server has no rate
budget and no key. What it would give is kept here: a timeout on every request (connect short,
read long: a model may think for minutes), a bounded number of retries of transport errors and
429/5xx with backoff (honouring Retry-After up to a cap, the backoff being a floor), and error
texts passed through the shared `redact_then_cut` (a URL with credentials in it never reaches a log).

Bounds on one call (`chat`, `tags`), whatever the server does:
- size: the answer is read as a stream and reading stops past `max_response_bytes` (default
  MAX_RESPONSE_BYTES, 16 MiB of decoded body; a streamed answer counts all its chunks): the call
  fails with an LLMError naming the cap. A real answer is a few KB; a 300 MB one is a broken or
  hostile server, not an answer.
- time: `timeout_s` bounds each read (a model may think for minutes before its first byte), and
  `total_timeout_s` (default TOTAL_TIMEOUT_S, 600 s) bounds the whole call, retries and their
  waits included: an answer dripping one byte per second never ends otherwise. Past it the call
  fails with an LLMError naming the deadline; a read blocked at that moment is cut off (the
  socket is shut down), so the call returns at the deadline, not one read timeout later.

Structured output is validated strictly (`chat_json`): the content must be a JSON document that
validates against the JSON schema (Draft 2020-12, `jsonschema`). An invalid answer is asked
again (`max_attempts`), each retry telling the model what was wrong; after the last attempt the
result is `failed` with every error, and no part of an invalid answer is ever returned.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import httpx
from pydantic import Field

from crypto_assets.sources.client import ERROR_TEXT_CHARS, redact, redact_then_cut, retry_after_seconds

URL_ENV = "CRYPTO_LLM_URL"
MODEL_ENV = "CRYPTO_LLM_MODEL"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
OK, FAILED = "ok", "failed"
MAX_RESPONSE_BYTES = 16 * 2**20  # decoded bytes of one answer (see the module docstring)
TOTAL_TIMEOUT_S = 600.0  # seconds for one whole call, retries included
_ERROR_BODY_BYTES = 64 * 2**10  # of an error answer, only the start is read (and 300 chars shown)


class LLMError(RuntimeError):
    """The LLM server could not be reached or answered with an error (message redacted)."""


class LLMUnavailable(LLMError):
    """The configured model is not on the server."""


@dataclass(frozen=True)
class ChatResult:
    """One `/api/chat` answer, streamed or not."""

    content: str
    model: str
    created_at: str | None
    done_reason: str | None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    total_duration_ns: int | None = None
    chunks: int = 1  # NDJSON chunks read (1 for a non-streaming answer)


@dataclass(frozen=True)
class StructuredResult:
    """A schema-validated answer, or a failure with the reason of every attempt. `value` is
    None unless the whole answer validated: an invalid answer is never half-used."""

    status: str
    value: Any = None
    attempts: int = 0
    errors: tuple[str, ...] = ()
    chat: ChatResult | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK


def schema_errors(document: Any, schema: Mapping) -> list[str]:
    """Every way `document` violates `schema` (empty when it validates), path first."""
    import jsonschema  # imported only when an LLM is in use

    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def parse_structured(content: str, schema: Mapping) -> tuple[Any, list[str]]:
    """(document, []) when `content` is one JSON document valid under `schema`, else (None, errors)."""
    try:
        document = json.loads(content)
    except (TypeError, ValueError) as exc:
        return None, [f"not JSON: {exc}"]
    problems = schema_errors(document, schema)
    return (None, problems) if problems else (document, [])


class OllamaClient:
    """A connection to one Ollama server and model (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        http_retries: int = 2,
        backoff_s: float = 1.0,
        retry_after_max_s: float = 60.0,
        options: Mapping[str, Any] | None = None,
        keep_alive: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        total_timeout_s: float = TOTAL_TIMEOUT_S,
    ):
        self.base_url = base_url.rstrip("/")
        # Credentials in the URL (a proxy in front of Ollama) are sent, never shown in a message.
        self._userinfo = httpx.URL(self.base_url).userinfo.decode("utf-8", "replace")
        self._display_base = str(httpx.URL(self.base_url).copy_with(userinfo=b"")).rstrip("/")
        self.model = model
        self.http_retries = http_retries
        self.backoff_s = backoff_s
        self.retry_after_max_s = retry_after_max_s
        self.options = dict(options or {})
        self.keep_alive = keep_alive
        if max_response_bytes <= 0 or not total_timeout_s > 0:
            raise ValueError("ollama: max_response_bytes and total_timeout_s must be positive")
        self.max_response_bytes = int(max_response_bytes)
        self.total_timeout_s = float(total_timeout_s)
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self._sleep = sleep
        self._log = log or (lambda _m: None)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            headers={"User-Agent": "crypto-assets/0.1 (+data pipeline)"},
        )
        self.requests_made = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- endpoints ------------------------------------------------------------------------

    def tags(self) -> list[str]:
        """Names of the models the server has (`/api/tags`)."""
        with self._request("GET", "/api/tags") as call:
            body = self._json(call)
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise LLMError(f"ollama: /api/tags answered without a 'models' list ({self._shown('/api/tags')})")
        return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]

    def check_model(self) -> str:
        """The server's name of the configured model; LLMUnavailable when it does not have it.
        A name without a tag means `:latest`, as in the Ollama CLI."""
        names = self.tags()
        wanted = {self.model, self.model if ":" in self.model else f"{self.model}:latest"}
        for name in names:
            if name in wanted:
                return name
        raise LLMUnavailable(
            f"ollama: model {self.model!r} is not on the server at {self._shown('')} "
            f"(it has: {', '.join(names) or 'none'}); run `ollama pull {self.model}`"
        )

    def chat(self, messages: Sequence[Mapping[str, str]], *, format: Any = None, stream: bool = False) -> ChatResult:
        """One `/api/chat` call; a streamed answer is assembled from its NDJSON chunks."""
        payload: dict[str, Any] = {"model": self.model, "messages": list(messages), "stream": stream}
        if format is not None:
            payload["format"] = format
        if self.options:
            payload["options"] = self.options
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        with self._request("POST", "/api/chat", json=payload) as call:
            if not stream:
                return _chat_result([self._json(call)], self._shown("/api/chat"))
            return _chat_result(list(self._ndjson(call)), self._shown("/api/chat"))

    def chat_json(
        self,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping,
        *,
        max_attempts: int = 3,
        stream: bool = False,
        check: Callable[[Any], list[str]] | None = None,
    ) -> StructuredResult:
        """Ask for an answer that validates against `schema`; retry an invalid one, telling the
        model what was wrong, at most `max_attempts` times in all. `check(document)` adds rules the
        schema cannot express (its errors count as invalid output too). HTTP failures raise LLMError."""
        conversation = list(messages)
        errors: list[str] = []
        last: ChatResult | None = None
        for attempt in range(1, max_attempts + 1):
            last = self.chat(conversation, format=dict(schema), stream=stream)
            document, problems = parse_structured(last.content, schema)
            if document is not None and check is not None:
                problems = check(document)
                document = None if problems else document
            if last.done_reason not in (None, "stop"):
                document, problems = None, [f"answer cut off (done_reason={last.done_reason!r})", *problems]
            if document is not None:
                return StructuredResult(OK, document, attempt, tuple(errors), last)
            errors.append(f"attempt {attempt}: " + "; ".join(problems[:5]))
            self._log(f"ollama: invalid structured answer ({self._redact_then_cut(errors[-1])})")
            conversation = [
                *messages,
                {"role": "assistant", "content": last.content[:4000]},
                {"role": "user", "content": "That answer is invalid: " + "; ".join(problems[:5])
                 + ". Answer again with only one JSON document that validates against the schema."},
            ]
        return StructuredResult(FAILED, None, max_attempts, tuple(errors), last)

    # -- internals ------------------------------------------------------------------------

    def _shown(self, path: str) -> str:
        return self._redact(f"{self._display_base}{path}")

    def _redact(self, text: str) -> str:
        """`text` without the URL's credentials or any registered secret."""
        secrets = [s for s in (self._userinfo, *self._userinfo.split(":", 1)) if s] if self._userinfo else []
        return redact(text, secrets)

    def _redact_then_cut(self, text: object, limit: int = ERROR_TEXT_CHARS) -> str:
        secrets = [s for s in (self._userinfo, *self._userinfo.split(":", 1)) if s] if self._userinfo else []
        return redact_then_cut(text, secrets, limit)

    def _deadline_error(self, shown: str, what: str = "") -> LLMError:
        return LLMError(self._redact(
            f"ollama: no complete answer within the call's deadline of {self.total_timeout_s:g} s "
            f"(total_timeout_s){what}; gave up ({shown})"))

    def _request(self, method: str, path: str, *, json: Any = None) -> _Call:
        """A `_Call` over a 2xx response (its body not read yet), after retries of transport
        errors and 429/5xx; the call's deadline (`total_timeout_s`) starts here."""
        shown = self._shown(path)
        deadline = time.monotonic() + self.total_timeout_s
        problem = ""
        for attempt in range(self.http_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._deadline_error(shown, f"; last error: {problem}" if problem else "")
            self.requests_made += 1
            # No single wait (connect, send, the model thinking before its first byte) may outlast the call.
            timeout = httpx.Timeout(min(self.timeout_s, left), connect=min(self.connect_timeout_s, left))
            request = self._http.build_request(method, path, json=json, timeout=timeout)
            wait = None
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                if time.monotonic() >= deadline:
                    raise self._deadline_error(shown) from None
                problem = f"{type(exc).__name__}: {exc}"
            else:
                call = _Call(self, response, deadline, shown)
                if response.status_code < 400:
                    return call
                with call:
                    body = self._redact_then_cut(call.read(_ERROR_BODY_BYTES, truncate=True).decode("utf-8", "replace"))
                problem = f"HTTP {response.status_code}: {body}"
                if response.status_code not in RETRY_STATUSES:
                    raise LLMError(self._redact(f"ollama: {problem} ({shown})"))
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is not None and not wait <= self.retry_after_max_s:
                    raise LLMError(self._redact(f"ollama: server asked to wait {wait:.0f} s; {problem} ({shown})"))
            if attempt == self.http_retries:
                break
            # The backoff is a floor: Retry-After 0 (or a past date) does not make retries immediate.
            backoff = self.backoff_s * 2**attempt
            wait = backoff if wait is None else max(wait, backoff)
            if time.monotonic() + wait >= deadline:
                raise self._deadline_error(shown, f" (a retry in {wait:.1f} s would pass it); last error: {problem}")
            self._log(self._redact(f"ollama: {problem}; retry {attempt + 1}/{self.http_retries} in {wait:.1f}s"))
            self._sleep(wait)
        raise LLMError(self._redact(f"ollama: failed after {self.http_retries + 1} attempts; last error: {problem} ({shown})"))

    def _json(self, call: _Call) -> Any:
        content = call.read(self.max_response_bytes)
        try:
            return json.loads(content)
        except ValueError as exc:
            raise LLMError(self._redact(f"ollama: answer is not JSON: {exc} ({call.shown})")) from None

    def _ndjson(self, call: _Call) -> Iterator[dict]:
        pending = b""
        for chunk in call.chunks(self.max_response_bytes):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                chunk_doc = self._ndjson_line(line, call.shown)
                if chunk_doc is not None:
                    yield chunk_doc
        chunk_doc = self._ndjson_line(pending, call.shown)
        if chunk_doc is not None:
            yield chunk_doc

    def _ndjson_line(self, line: bytes, shown: str) -> dict | None:
        if not line.strip():
            return None
        try:
            chunk = json.loads(line)
        except ValueError as exc:
            raise LLMError(self._redact(f"ollama: stream line is not JSON: {exc} ({shown})")) from None
        if isinstance(chunk, dict) and chunk.get("error"):
            raise LLMError(f"ollama: error in stream: {self._redact_then_cut(chunk['error'])}")
        return chunk


class _Call:
    """A response being read under the call's bounds: at most a given number of (decoded) bytes,
    and nothing past the deadline. A watchdog shuts the socket down at the deadline, so that a
    read blocked on a server that drips or stalls returns then (httpx's timeout is per read).
    Use with `with`: leaving closes the response and disarms the watchdog."""

    def __init__(self, client: OllamaClient, response: httpx.Response, deadline: float, shown: str):
        self.client, self.response, self.deadline, self.shown = client, response, deadline, shown
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._timer: threading.Timer | None = None
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        left = deadline - time.monotonic()
        if isinstance(sock, socket.socket) and math.isfinite(left):
            self._timer = threading.Timer(max(0.0, left), self._fire, args=(sock,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS
            except OSError:
                pass

    def chunks(self, cap: int, *, truncate: bool = False) -> Iterator[bytes]:
        """The decoded body in pieces; past `cap` bytes an LLMError naming the cap (or, with
        `truncate`, the end of the body), past the deadline an LLMError naming the deadline."""
        total = 0
        try:
            for chunk in self.response.iter_bytes():
                if time.monotonic() >= self.deadline:
                    raise self.client._deadline_error(self.shown, f" (after {total} bytes of the answer)")
                if total + len(chunk) > cap:
                    if truncate:
                        yield chunk[: cap - total]
                        return
                    raise LLMError(self.client._redact(
                        f"ollama: answer larger than the cap of {cap} bytes (max_response_bytes); stopped reading "
                        f"after {total + len(chunk)} bytes ({self.shown})"))
                total += len(chunk)
                yield chunk
        except httpx.HTTPError as exc:  # a transport error, or a decoding error of a broken body
            if self.fired or time.monotonic() >= self.deadline:
                raise self.client._deadline_error(self.shown, f" (after {total} bytes of the answer)") from None
            raise LLMError(self.client._redact(f"ollama: stream broke off: {type(exc).__name__}: {exc} "
                                               f"({self.shown})")) from None

    def read(self, cap: int, *, truncate: bool = False) -> bytes:
        return b"".join(self.chunks(cap, truncate=truncate))

    def close(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
        self.response.close()

    def __enter__(self) -> _Call:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chat_result(chunks: list[Any], shown: str) -> ChatResult:
    """Assemble `/api/chat` chunks (one for a plain answer); the last must say done."""
    if not chunks or not all(isinstance(c, dict) for c in chunks):
        raise LLMError(f"ollama: empty or malformed chat answer ({shown})")
    last = chunks[-1]
    if last.get("error"):
        raise LLMError(f"ollama: {redact_then_cut(last['error'])} ({redact(shown)})")
    if not last.get("done"):
        raise LLMError(f"ollama: chat answer ended before its final chunk (no done: true) ({shown})")
    parts = []
    for chunk in chunks:
        message = chunk.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
            raise LLMError(f"ollama: chat chunk without message content ({shown})")
        parts.append(message.get("content", ""))
    return ChatResult(
        content="".join(parts),
        model=str(last.get("model") or chunks[0].get("model") or ""),
        created_at=last.get("created_at"),
        done_reason=last.get("done_reason"),
        prompt_eval_count=last.get("prompt_eval_count"),
        eval_count=last.get("eval_count"),
        total_duration_ns=last.get("total_duration"),
        chunks=len(chunks),
    )


class LLMResource(dg.ConfigurableResource):
    """A local Ollama server. OFF unless both `url` and `model` are set (by default from
    CRYPTO_LLM_URL and CRYPTO_LLM_MODEL); assets that use it then report themselves disabled."""

    url: str | None = Field(default_factory=lambda: os.environ.get(URL_ENV) or None,
                            description="Ollama base URL, e.g. http://127.0.0.1:11434 (env CRYPTO_LLM_URL).")
    model: str | None = Field(default_factory=lambda: os.environ.get(MODEL_ENV) or None,
                              description="Model name as `ollama list` shows it (env CRYPTO_LLM_MODEL).")
    timeout_s: float = 300.0
    connect_timeout_s: float = 5.0
    http_retries: int = 2
    max_attempts: int = 3
    stream: bool = False
    temperature: float = 0.0
    seed: int | None = 42
    num_ctx: int | None = 8192
    max_response_bytes: int = Field(default=MAX_RESPONSE_BYTES, description="Largest answer read (decoded bytes); "
                                    "a larger one fails the call, naming the cap.")
    total_timeout_s: float = Field(default=TOTAL_TIMEOUT_S, description="Deadline of one whole call (retries and "
                                   "their waits included); `timeout_s` bounds each read.")

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.model)

    def disabled_reason(self) -> str | None:
        if self.enabled:
            return None
        missing = [name for name, value in ((URL_ENV, self.url), (MODEL_ENV, self.model)) if not value]
        return f"no LLM configured: set {' and '.join(missing)} (e.g. http://127.0.0.1:11434 and a pulled model)"

    def client(self, *, transport: httpx.BaseTransport | None = None,
               log: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep) -> OllamaClient:
        if not self.enabled:
            raise LLMUnavailable(self.disabled_reason())
        options: dict[str, Any] = {"temperature": self.temperature}
        if self.seed is not None:
            options["seed"] = self.seed
        if self.num_ctx is not None:
            options["num_ctx"] = self.num_ctx
        return OllamaClient(
            self.url, self.model, timeout_s=self.timeout_s, connect_timeout_s=self.connect_timeout_s,
            http_retries=self.http_retries, options=options, transport=transport, log=log, sleep=sleep,
            max_response_bytes=self.max_response_bytes, total_timeout_s=self.total_timeout_s,
        )
