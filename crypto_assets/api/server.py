"""`crypto-assets api`: run the data API with uvicorn, or mint an API key.

    crypto-assets api --host 0.0.0.0 --port 8000 --workers 2
    crypto-assets api --no-access-log        # ~10 % more requests/s on cached endpoints
    crypto-assets api --new-key readonly     # prints a new key once, and the entry to configure
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from crypto_assets.api import logs
from crypto_assets.api.settings import ACCESS_LOG_ENV, TIERS, TOKEN_SECRET_ENV, ApiSettings, hash_key


def new_key(tier: str) -> tuple[str, str]:
    """A random key and its `tier:sha256` entry for CRYPTO_API_KEYS / CRYPTO_API_KEYS_FILE."""
    key = "ca_" + secrets.token_urlsafe(32)
    return key, f"{tier}:{hash_key(key)}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crypto-assets api", description="Serve the crypto-assets data API (configured by the environment: "
        "CRYPTO_WAREHOUSE_URL, REDIS_URL, CRYPTO_API_KEYS, ...; see docs/api.md).")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes (default 1). One worker uses one core; run one per core "
                             "when requests are CPU-bound (uncached reads), with REDIS_URL set so rate limits and "
                             "the cache are shared (docs/api.md)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                        help=f"one log line per request, keys redacted (default on; {ACCESS_LOG_ENV}=0 turns it "
                             "off too); off gives ~10%% more requests/s")
    parser.add_argument("--new-key", choices=TIERS, metavar="TIER",
                        help=f"print a new API key of TIER ({', '.join(TIERS)}) and its hash entry, then exit")
    return parser


def serve(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.new_key:
        key, entry = new_key(args.new_key)
        print(f"key (give it to the client; it is not stored anywhere): {key}")
        print(f"entry (add to CRYPTO_API_KEYS or CRYPTO_API_KEYS_FILE): {entry}")
        return 0
    if args.access_log is not None:  # the workers read it from the environment (app.py)
        os.environ[ACCESS_LOG_ENV] = "1" if args.access_log else "0"
    settings = ApiSettings.from_env()  # fail now, naming the variable, if the environment is misconfigured
    import uvicorn

    if args.workers > 1 and not os.environ.get(TOKEN_SECRET_ENV):
        # Workers inherit the environment: one random secret for all of them, so a page token
        # made by one worker is accepted by the others (still lost at restart: see docs/api.md).
        os.environ[TOKEN_SECRET_ENV] = secrets.token_urlsafe(32)
    logs.install()
    uvicorn.run("crypto_assets.api.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, log_config=logs.log_config(),
                access_log=settings.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(serve())
