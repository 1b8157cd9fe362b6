"""Replay routes whose file names a query param: one recording per requested range."""

from __future__ import annotations

import json

import httpx
import yaml

from crypto_assets.sources.replay import replay_transport


def _client(tmp_path, routes: list[dict], files: dict[str, object]) -> httpx.Client:
    folder = tmp_path / "replay" / "src"
    folder.mkdir(parents=True)
    (folder / "catalog.yaml").write_text(yaml.safe_dump({"routes": routes}))
    for name, body in files.items():
        (folder / name).write_text(json.dumps(body))
    (tmp_path / "replay" / "secret.json").write_text(json.dumps({"outside": True}))
    transport = replay_transport("src", "https://api.example.com/v3", str(tmp_path / "replay"))
    return httpx.Client(transport=transport, base_url="https://api.example.com/v3")


def test_each_range_gets_its_own_recording(tmp_path):
    client = _client(tmp_path, [{"path": "/chart/range", "params": {"vs": "usd"}, "file": "chart_{from}_{to}.json"}],
                     {"chart_100_200.json": {"range": "first"}, "chart_200_300.json": {"range": "second"}})
    assert client.get("/chart/range", params={"vs": "usd", "from": 100, "to": 200}).json() == {"range": "first"}
    assert client.get("/chart/range", params={"vs": "usd", "from": 200, "to": 300}).json() == {"range": "second"}
    # A range nobody recorded is a replay miss, never another range's payload.
    missing = client.get("/chart/range", params={"vs": "usd", "from": 100, "to": 300})
    assert missing.status_code == 404 and missing.headers["X-Replay"] == "miss"


def test_a_request_without_the_param_falls_through_to_the_next_route(tmp_path):
    routes = [{"path": "/new", "file": "page_after_{after}.json"}, {"path": "/new", "file": "first.json"}]
    client = _client(tmp_path, routes, {"page_after_t3_b.json": {"page": 2}, "first.json": {"page": 1}})
    assert client.get("/new").json() == {"page": 1}
    assert client.get("/new", params={"after": "t3_b"}).json() == {"page": 2}


def test_a_param_cannot_reach_outside_the_folder(tmp_path):
    client = _client(tmp_path, [{"path": "/x", "file": "{name}.json"}], {"ok.json": {"ok": True}})
    assert client.get("/x", params={"name": "ok"}).json() == {"ok": True}
    for name in ("../secret", "..", "a/b", "..\\secret"):
        assert client.get("/x", params={"name": name}).status_code == 404, name
