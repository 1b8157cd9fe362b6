"""No API key in a log line: query-string secrets are redacted from every record the API's
server logs (uvicorn's access lines, its WebSocket "[accepted]" lines, our own messages).

Browsers pass the WebSocket key as `?api_key=` (they cannot set headers there), and any client
may append one to a URL; uvicorn logs the full path with its query string at INFO. The filter
rewrites each string argument of a record (keeping the argument tuple, which uvicorn's access
formatter unpacks) and the message itself, replacing the value of every sensitive parameter
by `***`.

`crypto-assets api` installs it on uvicorn's handlers through `log_config()` (so it sees every
record those handlers print, propagated ones included); `create_app` also adds it to uvicorn's
loggers, for servers started another way (`uvicorn --factory ...app_from_env`).
"""

from __future__ import annotations

import copy
import logging
import re
import urllib.parse

# Names compared after percent-decoding and lower-casing.
SENSITIVE_PARAMS = frozenset({
    "api_key", "apikey", "api-key", "x-api-key", "key", "token", "access_token", "auth", "password", "secret",
})
REDACTED = "***"
_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;?#\s\"']+)=(?P<value>[^&;#\s\"']*)")
_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "crypto_assets.api")


def redact_query(text: str) -> str:
    """`text` with the value of every sensitive query parameter replaced by `***`."""
    if "=" not in text:
        return text

    def replace(match: re.Match) -> str:
        name = urllib.parse.unquote_plus(match["name"]).strip().lower()
        if name in SENSITIVE_PARAMS and match["value"]:
            return f"{match['lead']}{match['name']}={REDACTED}"
        return match[0]

    return _PARAM.sub(replace, text)


class RedactQueryKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_query(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


_FILTER = RedactQueryKeys()


def install() -> None:
    """Add the filter to uvicorn's loggers and ours (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryKeys) for f in logger.filters):
            logger.addFilter(_FILTER)


def log_config() -> dict:
    """uvicorn's default logging config with the filter on every handler, and the API's own
    loggers printed through the same (filtered) handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query_keys"] = {"()": f"{__name__}.RedactQueryKeys"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_query_keys"]
    config["loggers"]["crypto_assets"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
