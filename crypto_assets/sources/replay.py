"""Replay mode: recorded real payloads served through `httpx.MockTransport`.

Each source has `resources/replay/<source>/catalog.yaml` listing routes:

    routes:
      - path: /coins/markets            # relative to the source's base_url (glob allowed), or
        url: https://host/feed.xml      # an absolute URL without query string
        params: {vs_currency: usd}      # optional: these query params must match
        file: coins_markets_usd.json    # the recorded body, next to the catalog; a {name} in it is
                                        # the request's query param `name` (mc_{from}_{to}.json: one
                                        # recording per requested range)
        status: 200                     # optional, default 200
        headers: {Retry-After: "1"}     # optional

The first matching route answers (a route whose file names a query param matches only requests
that carry it and whose file exists). A request no route matches gets a 404 whose body says
so: replay never invents a payload, so a symbol without a recording simply has no data.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from pathlib import Path

import httpx
import yaml

from crypto_assets.paths import RESOURCES_DIR

REPLAY_DIR = RESOURCES_DIR / "replay"
_PARAM_IN_FILE = re.compile(r"\{([^{}]+)\}")


class ReplayRoute:
    def __init__(self, folder: Path, entry: dict):
        self.path = entry.get("path")
        self.url = entry.get("url")
        if not (self.path or self.url) or not entry.get("file"):
            raise ValueError(f"replay route in {folder} needs path or url, and file: {entry}")
        self.params = {k: str(v) for k, v in (entry.get("params") or {}).items()}
        self.folder, self.file_name = folder, str(entry["file"])
        self.file = folder / self.file_name
        self.file_params = _PARAM_IN_FILE.findall(self.file_name)
        self.status = int(entry.get("status", 200))
        self.headers = {k: str(v) for k, v in (entry.get("headers") or {}).items()}
        self.content_type = entry.get("content_type") or (
            "application/json" if self.file.suffix == ".json" else "application/xml"
        )

    def matches(self, request: httpx.Request, base_path: str) -> bool:
        if self.url is not None:
            plain = str(request.url.copy_with(query=None))
            if plain.rstrip("/") != self.url.rstrip("/"):
                return False
        else:
            rel = request.url.path[len(base_path) :] if request.url.path.startswith(base_path) else None
            if rel is None or not fnmatch.fnmatchcase(rel, self.path):
                return False
        return all(request.url.params.get(k) == v for k, v in self.params.items())

    def file_for(self, request: httpx.Request) -> Path | None:
        """The recording answering `request`: `file` with its {param}s filled from the request's
        query; None when a param is missing, would leave the folder, or has no recording."""
        if not self.file_params:
            return self.file
        values = {name: request.url.params.get(name) for name in self.file_params}
        if any(v is None or "/" in v or "\\" in v or ".." in v for v in values.values()):
            return None
        file = self.folder / _PARAM_IN_FILE.sub(lambda m: values[m.group(1)], self.file_name)
        return file if file.is_file() else None


@cache
def load_routes(source: str, replay_dir: str | None = None) -> tuple[ReplayRoute, ...]:
    folder = Path(replay_dir or REPLAY_DIR) / source
    catalog = folder / "catalog.yaml"
    if not catalog.exists():
        raise FileNotFoundError(f"no replay recordings for source {source!r} ({catalog})")
    entries = yaml.safe_load(catalog.read_text()) or {}
    return tuple(ReplayRoute(folder, e) for e in entries.get("routes", []))


def replay_transport(source: str, base_url: str = "", replay_dir: str | None = None) -> httpx.MockTransport:
    routes = load_routes(source, replay_dir)
    base_path = httpx.URL(base_url).path.rstrip("/") if base_url else ""

    def handler(request: httpx.Request) -> httpx.Response:
        for route in routes:
            if route.matches(request, base_path) and (file := route.file_for(request)) is not None:
                return httpx.Response(
                    route.status,
                    content=file.read_bytes(),
                    headers={"Content-Type": route.content_type, **route.headers},
                )
        return httpx.Response(
            404, json={"error": f"replay: no recording for {request.url}"}, headers={"X-Replay": "miss"}
        )

    return httpx.MockTransport(handler)
