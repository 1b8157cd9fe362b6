"""Source specs from `resources/sources.yaml` and the Dagster resource that hands out clients."""

from __future__ import annotations

import os
from functools import cache
from typing import ClassVar

import dagster as dg
import httpx
import yaml
from pydantic import Field, PrivateAttr

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.client import MissingCredentialsError, SourceClient, SourceSpec
from crypto_assets.sources.replay import replay_transport
from crypto_assets.sources.simulated import SIMULATED, check_separation, simulated_transport

SOURCE_MODE_ENV = "CRYPTO_SOURCE_MODE"
SOURCE_MODES = ("live", "replay", SIMULATED)


@cache
def source_specs() -> dict[str, SourceSpec]:
    raw = yaml.safe_load((RESOURCES_DIR / "sources.yaml").read_text())
    return {name: SourceSpec(name=name, **cfg) for name, cfg in raw["sources"].items()}


def source_spec(name: str) -> SourceSpec:
    specs = source_specs()
    if name not in specs:
        raise KeyError(f"unknown source {name!r}; resources/sources.yaml declares {sorted(specs)}")
    return specs[name]


def default_source_mode() -> str:
    return os.environ.get(SOURCE_MODE_ENV, "live")


def provenance(mode: str, source: str) -> str:
    """The `source` column value of rows `source` gave in `mode`: replayed and simulated rows say so
    (`replay:<source>`, `simulated:<source>`), live ones are the source's name."""
    return f"{mode}:{source}" if mode in ("replay", SIMULATED) else source


def mode_transport(mode: str, source: str, base_url: str, replay_dir: str | None, client_kwargs: dict) -> dict:
    """`client_kwargs` of a SourceClient with the transport of `mode` (a test's own `transport=` wins):
    replay's recordings or the simulated market, both local, so no spacing; live: httpx's own.
    Refuses to mix simulated and real data (`check_separation`)."""
    kwargs = dict(client_kwargs)
    check_separation(mode)
    if kwargs.get("transport") is None and mode in ("replay", SIMULATED):
        kwargs["transport"] = (replay_transport(source, base_url, replay_dir) if mode == "replay"
                               else simulated_transport(source, base_url))
        kwargs.setdefault("sleep", lambda _s: None)
    return kwargs


class HttpSource(dg.ConfigurableResource):
    """Base of every HTTP source resource: builds the shared client in live or replay mode.

    Subclasses set `source_name` and add the endpoint methods; parsing lives in plain
    functions so tests can feed them recorded payloads directly.
    """

    mode: str = Field(default="live", description="'live' calls the provider; 'replay' serves recorded payloads; "
                      "'simulated' answers with a synthetic market at the current time (sources/simulated.py).")
    api_key: str | None = Field(default=None, description="Provider API key; set from the environment, never in code.")
    replay_dir: str | None = Field(default=None, description="Folder of replay catalogs (default resources/replay).")

    _client: SourceClient | None = PrivateAttr(default=None)

    source_name: ClassVar[str] = ""  # set by each subclass

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        log = context.log.info if context.log else None
        self._client = self.make_client(log=log)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    def make_client(self, log=None, **kwargs) -> SourceClient:
        spec = source_spec(self.source_name)
        if self.mode not in SOURCE_MODES:
            raise ValueError(f"{spec.name}: mode must be one of {SOURCE_MODES}, got {self.mode!r}")
        kwargs = mode_transport(self.mode, spec.name, spec.base_url, self.replay_dir, kwargs)
        api_key = self.api_key or (os.environ.get(spec.api_key_env) if spec.api_key_env else None)
        if self.mode == "live" and spec.api_key_required and not api_key:
            raise MissingCredentialsError(
                f"{spec.name}: set the environment variable {spec.api_key_env} (API key) to use the live source, "
                f"or run with {SOURCE_MODE_ENV}=replay"
            )
        if kwargs.get("transport") is None:  # live (replay, simulated and tests' scripted ones are set)
            kwargs["transport"] = self.live_transport()
        return SourceClient(spec, api_key=api_key if self.mode == "live" else None, log=log, **kwargs)

    def live_transport(self) -> httpx.BaseTransport | None:
        """The httpx transport for live mode; None is httpx's default. A source overrides this
        when the provider needs another HTTP stack (e.g. a browser TLS fingerprint)."""
        return None

    @property
    def client(self) -> SourceClient:
        if self._client is None:  # used outside a run (notebook, test): build lazily
            self._client = self.make_client()
        return self._client

    @property
    def provenance(self) -> str:
        """The `source` column value: replayed and simulated rows say so."""
        return provenance(self.mode, self.source_name)
