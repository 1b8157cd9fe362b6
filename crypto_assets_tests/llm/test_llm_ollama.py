"""`LLMResource` / `OllamaClient` against a real HTTP server on 127.0.0.1 serving recorded Ollama bodies
(crypto_assets_tests/data/ollama, see its README): plain and streamed chat, /api/tags, HTTP retries,
and strict JSON-schema validation of structured answers (invalid ones retried, then failed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crypto_assets.llm.narratives import NARRATIVE_SCHEMA, semantic_errors
from crypto_assets.llm.ollama import FAILED, OK, LLMError, LLMResource, LLMUnavailable, parse_structured
from crypto_assets_tests.llm.ollama_server import Answer, OllamaServer, chat_body_with_content, recorded

VALID = {"themes": [{"theme": "regulation", "strength": 0.7, "coins": ["BTC"], "evidence": [1, 2]},
                    {"theme": "security", "strength": 0.2, "coins": [], "evidence": [2]}],
         "summary": "Regulators discussed spot bitcoin products; one exchange reported a breach."}


def resource(server: OllamaServer, **kw) -> LLMResource:
    return LLMResource(url=server.url, model=kw.pop("model", "llama3.2"), timeout_s=10, connect_timeout_s=2, **kw)


def no_sleep(_s: float) -> None:
    pass


def test_off_by_default_and_says_why(monkeypatch):
    monkeypatch.delenv("CRYPTO_LLM_URL", raising=False)
    monkeypatch.delenv("CRYPTO_LLM_MODEL", raising=False)
    llm = LLMResource()
    assert not llm.enabled
    assert "CRYPTO_LLM_URL" in llm.disabled_reason() and "CRYPTO_LLM_MODEL" in llm.disabled_reason()
    with pytest.raises(LLMUnavailable):
        llm.client()
    monkeypatch.setenv("CRYPTO_LLM_URL", "http://127.0.0.1:11434")
    monkeypatch.setenv("CRYPTO_LLM_MODEL", "llama3.2")
    assert LLMResource().enabled and LLMResource().disabled_reason() is None


def test_recorded_chat_answer_is_parsed_with_its_metadata():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(recorded("chat_response.json")))
        with resource(server).client() as client:
            result = client.chat([{"role": "user", "content": "hi"}], format="json")
        sent = server.chat_requests()[0]
    assert result.content == "This is test completion response"  # the recording's placeholder text
    assert (result.model, result.done_reason, result.eval_count, result.prompt_eval_count) == ("llama3.2", "stop", 45, 38)
    assert result.total_duration_ns == 740574544 and result.chunks == 1
    assert sent["model"] == "llama3.2" and sent["stream"] is False and sent["format"] == "json"
    assert sent["options"]["temperature"] == 0.0 and sent["messages"] == [{"role": "user", "content": "hi"}]


def test_recorded_stream_is_assembled_from_its_ndjson_chunks():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(recorded("chat_response_stream.ndjson"), stream=True))
        with resource(server, stream=True).client() as client:
            result = client.chat([{"role": "user", "content": "hi"}], stream=True)
        assert server.chat_requests()[0]["stream"] is True
    assert result.content == "This is test completion response"
    assert result.chunks == 6 and result.model == "phi3" and result.done_reason == "stop" and result.eval_count == 239


def test_a_stream_that_breaks_off_before_done_is_an_error_not_a_short_answer():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(recorded("chat_response_stream.ndjson"), stream=True, cut_after_lines=3))
        with resource(server).client() as client, pytest.raises(LLMError, match="stream broke off|before its final"):
            client.chat([{"role": "user", "content": "hi"}], stream=True)


def test_tags_finds_the_model_or_names_what_the_server_has():
    with OllamaServer() as server:
        server.queue("/api/tags", Answer(recorded("tags.json")))
        with resource(server, model="gpt-oss:20b").client() as client:
            assert client.tags() == ["deepseek-v3.1:671b", "gpt-oss:120b", "gpt-oss:20b"]
            assert client.check_model() == "gpt-oss:20b"
        with resource(server, model="llama3.2").client() as client, pytest.raises(LLMUnavailable) as exc:
            client.check_model()
    assert "llama3.2" in str(exc.value) and "gpt-oss:20b" in str(exc.value) and "ollama pull" in str(exc.value)


def test_5xx_is_retried_then_the_answer_is_used():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(b'{"error":"model is loading"}', status=503, headers={"Retry-After": "0"}),
                     Answer(recorded("chat_response.json")))
        with resource(server).client(sleep=no_sleep) as client:
            result = client.chat([{"role": "user", "content": "hi"}])
            assert client.requests_made == 2
    assert result.done_reason == "stop"


def test_a_server_that_stays_down_fails_with_a_clear_message():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(b'{"error":"boom"}', status=500))
        with resource(server, http_retries=2).client(sleep=no_sleep) as client, pytest.raises(LLMError) as exc:
            client.chat([{"role": "user", "content": "hi"}])
        assert len(server.chat_requests()) == 3
    assert "failed after 3 attempts" in str(exc.value) and "HTTP 500" in str(exc.value)
    with OllamaServer() as server:
        url = server.url
    # nothing listens there any more: a transport error, retried, then a clear failure
    llm = LLMResource(url=url, model="m", timeout_s=2, connect_timeout_s=1, http_retries=1)
    with llm.client(sleep=no_sleep) as client, pytest.raises(LLMError, match="ConnectError"):
        client.chat([{"role": "user", "content": "hi"}])


def test_4xx_is_not_retried():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(b'{"error":"model \\"x\\" not found, try pulling it first"}', status=404))
        with resource(server).client(sleep=no_sleep) as client, pytest.raises(LLMError, match="HTTP 404.*not found"):
            client.chat([{"role": "user", "content": "hi"}])
        assert len(server.chat_requests()) == 1


def test_valid_structured_answer_is_returned_whole_and_the_schema_is_sent_as_format():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(chat_body_with_content(json.dumps(VALID))))
        with resource(server).client() as client:
            result = client.chat_json([{"role": "user", "content": "news"}], NARRATIVE_SCHEMA)
        sent = server.chat_requests()
    assert result.status == OK and result.value == VALID and result.attempts == 1 and result.errors == ()
    assert len(sent) == 1 and sent[0]["format"] == NARRATIVE_SCHEMA


MALFORMED = [
    "This is test completion response",  # the recording's own placeholder: not JSON at all
    '{"themes": [{"theme": "regulation", "strength": 0.7, "coins": ["BTC"], "evidence": [1]}]',  # truncated
    json.dumps({"themes": [], "summary": "ok", "extra": 1}),  # additional property
    json.dumps({"themes": [{"theme": "weather", "strength": 0.5, "coins": [], "evidence": [1]}], "summary": "x"}),
    json.dumps({"themes": [{"theme": "macro", "strength": 1.5, "coins": [], "evidence": [1]}], "summary": "x"}),
    json.dumps({"themes": [{"theme": "macro", "strength": "high", "coins": [], "evidence": [1]}], "summary": "x"}),
    json.dumps({"themes": [{"theme": "macro", "strength": 0.5, "coins": ["btc"], "evidence": [1]}], "summary": "x"}),
    json.dumps({"themes": [], "summary": ""}),
    json.dumps([VALID]),
]


@pytest.mark.parametrize("content", MALFORMED)
def test_malformed_output_never_validates(content):
    document, problems = parse_structured(content, NARRATIVE_SCHEMA)
    assert document is None and problems


def test_invalid_output_is_retried_with_the_reason_then_the_valid_answer_is_used():
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(recorded("chat_response.json")),  # placeholder text: not JSON
                     Answer(chat_body_with_content(MALFORMED[4])),  # strength 1.5
                     Answer(chat_body_with_content(json.dumps(VALID))))
        with resource(server).client() as client:
            result = client.chat_json([{"role": "user", "content": "news"}], NARRATIVE_SCHEMA, max_attempts=3)
        sent = server.chat_requests()
    assert result.status == OK and result.value == VALID and result.attempts == 3
    assert "not JSON" in result.errors[0] and "1.5 is greater than the maximum of 1" in result.errors[1]
    # each retry shows the model its previous answer and what was wrong with it
    assert sent[1]["messages"][-2] == {"role": "assistant", "content": "This is test completion response"}
    assert "invalid" in sent[1]["messages"][-1]["content"] and "not JSON" in sent[1]["messages"][-1]["content"]


def test_output_that_stays_invalid_is_failed_with_no_value():
    half_valid = json.dumps({"themes": VALID["themes"], "summary": "x", "note": "extra"})
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(chat_body_with_content(half_valid)))
        with resource(server).client() as client:
            result = client.chat_json([{"role": "user", "content": "news"}], NARRATIVE_SCHEMA, max_attempts=2)
        assert len(server.chat_requests()) == 2
    assert result.status == FAILED and result.value is None and result.attempts == 2
    assert all("Additional properties are not allowed" in e for e in result.errors)


def test_semantic_rules_count_as_invalid_output():
    repeated = {"themes": [VALID["themes"][0], VALID["themes"][0]], "summary": "x"}
    far = {"themes": [{**VALID["themes"][0], "evidence": [9]}], "summary": "x"}
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(chat_body_with_content(json.dumps(repeated))),
                     Answer(chat_body_with_content(json.dumps(far))))
        with resource(server).client() as client:
            result = client.chat_json([{"role": "user", "content": "news"}], NARRATIVE_SCHEMA, max_attempts=2,
                                      check=lambda d: semantic_errors(d, n_articles=2))
    assert result.status == FAILED and result.value is None
    assert "regulation listed more than once" in result.errors[0]
    assert "not article numbers" in result.errors[1]


def test_a_cut_off_answer_is_invalid_even_when_its_json_parses():
    body = json.loads(chat_body_with_content(json.dumps(VALID)))
    body["done_reason"] = "length"
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(json.dumps(body).encode()))
        with resource(server).client() as client:
            result = client.chat_json([{"role": "user", "content": "news"}], NARRATIVE_SCHEMA, max_attempts=1)
    assert result.status == FAILED and "cut off" in result.errors[0]


def test_structured_answer_over_a_stream():
    text = json.dumps(VALID)
    lines = [json.loads(line) for line in recorded("chat_response_stream.ndjson").decode().splitlines()]
    pieces = [text[:10], text[10:40], text[40:]]  # constructed: the recording's chunk texts are placeholders
    chunks = [{**lines[i], "message": {"role": "assistant", "content": p}} for i, p in enumerate(pieces)] + [lines[-1]]
    with OllamaServer() as server:
        server.queue("/api/chat", Answer("\n".join(json.dumps(c) for c in chunks).encode(), stream=True))
        with resource(server).client() as client:
            result = client.chat_json([{"role": "user", "content": "news"}], NARRATIVE_SCHEMA, stream=True)
    assert result.status == OK and result.value == VALID and result.chat.chunks == 4


@pytest.mark.slow
def test_importing_the_llm_module_does_not_import_jsonschema_or_torch():
    code = "import crypto_assets.llm.ollama, sys; assert 'jsonschema' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_credentials_in_the_url_never_reach_a_message_or_log():
    logged: list[str] = []
    with OllamaServer() as server:
        server.queue("/api/chat", Answer(b'{"error":"boom"}', status=500))
        url = server.url.replace("http://", "http://proxyuser:s3cr3t-pass@")
        llm = LLMResource(url=url, model="m", timeout_s=5, connect_timeout_s=1, http_retries=1)
        with llm.client(sleep=no_sleep, log=logged.append) as client, pytest.raises(LLMError) as exc:
            client.chat([{"role": "user", "content": "hi"}])
    assert "HTTP 500" in str(exc.value) and server.url.removeprefix("http://") in str(exc.value)
    assert logged and all("s3cr3t-pass" not in m and "proxyuser" not in m for m in [str(exc.value), *logged])
