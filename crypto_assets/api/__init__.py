"""The HTTP/WebSocket data API over the warehouse (optional extra `api`).

    from crypto_assets.api import create_app
    app = create_app(ApiSettings.from_env())

Only `create_app` and `server` import FastAPI; `crypto_assets.api.pubsub` (called from the
price asset) and `crypto_assets.api.settings` do not, so the asset graph runs without the extra.
See docs/api.md.
"""

from __future__ import annotations


def create_app(settings=None):
    """The FastAPI app (imported lazily so `crypto_assets.api.pubsub` never needs FastAPI)."""
    from crypto_assets.api.app import create_app as _create_app

    return _create_app(settings)


__all__ = ["create_app"]
