"""No API key in a log line: query-string secrets are redacted from every record the API's
server logs (uvicorn's access lines, its WebSocket "[accepted]" lines, our own messages).

Browsers pass the WebSocket key as `?api_key=` (they cannot set headers there), and any client
may append one to a URL; uvicorn logs the full path with its query string at INFO. The filter
rewrites each string argument of a record (keeping the argument tuple, which uvicorn's access
formatter unpacks) and the message itself, replacing the value of every sensitive parameter
by `***`. A parameter is recognised however the client spelled it: any case, percent-encoded
(even twice), its name quoted or suffixed (`api_key[]=`, `api_key.=`, `api_key%00=`), its value
quoted (`api_key='KEY'`: the quotes stay, the key goes), or hidden behind an encoded separator
(`?x=1%26api_key=KEY`).

`crypto-assets api` installs it on uvicorn's handlers through `log_config()` (so it sees every
record those handlers print, propagated ones included); `create_app` also adds it to uvicorn's
loggers, for servers started another way (`uvicorn --factory ...app_from_env`).
"""

from __future__ import annotations

import copy
import logging
import re
import urllib.parse

# Names compared after percent-decoding (repeatedly), lower-casing, dropping `[...]` groups
# and every character but letters and digits: `API_KEY`, `api%5Fkey`, `'api_key'`, `api_key[]`,
# `api_key.` and `api_key%00` are all `apikey`.
SENSITIVE_PARAMS = frozenset({
    "api_key", "apikey", "api-key", "x-api-key", "key", "token", "access_token", "auth", "password", "secret",
})
REDACTED = "***"
_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "crypto_assets.api")
# `%` followed by any number of `25`: a percent sign encoded once more per level.
_PCT = r"%(?:25)*"
# A parameter starts after `?`, `&` or `;`, raw or percent-encoded (`?x=1%26api_key=...` is logged
# as it came); its name runs to the first `=` (raw or encoded).
_PARAM_START = re.compile(
    rf"(?:[?&;]|{_PCT}(?:26|3[FfBb]))(?P<name>(?:(?!{_PCT}(?:26|3[BbDdFf]))[^=&;?#\s])+)(?P<eq>=|{_PCT}3[Dd])"
)
# A sensitive value runs to the next raw separator (quotes included: they are the client's).
_VALUE_END = re.compile(r"[&;#\s]")
_QUOTES = "'\"`"


def _normal(name: str) -> str:
    for _ in range(3):
        decoded = urllib.parse.unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    name = re.sub(r"\[[^\]]*\]?", "", name.lower())
    return re.sub(r"[^a-z0-9]", "", name)


_SENSITIVE = frozenset(_normal(n) for n in SENSITIVE_PARAMS)


def sensitive_param(name: str) -> bool:
    """Whether a query parameter name (as it appears in a URL) names a secret."""
    return _normal(name) in _SENSITIVE


def _masked(value: str) -> str:
    """`***` in place of a value, keeping the quotes around it (a log line's own closing quote
    after a WebSocket path is kept that way)."""
    inner = value.strip(_QUOTES)
    if not inner:
        return value  # nothing but quotes: nothing to hide
    lead = value[: len(value) - len(value.lstrip(_QUOTES))]
    trail = value[len(value.rstrip(_QUOTES)):]
    return f"{lead}{REDACTED}{trail}"


def redact_query(text: str) -> str:
    """`text` with the value of every sensitive query parameter replaced by `***`."""
    if "=" not in text and "%" not in text:
        return text
    out, done = [], 0
    for match in _PARAM_START.finditer(text):
        if match.start() < done or not sensitive_param(match["name"]):
            continue
        end_match = _VALUE_END.search(text, match.end())
        end = end_match.start() if end_match else len(text)
        value = text[match.end():end]
        if not value:
            continue
        out.append(text[done:match.end()])
        out.append(_masked(value))
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


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
