"""Canonical article URLs and the `article_id` derived from them.

The same article reaches us through several feeds with different tracking parameters
(`?utm_source=rss`, `?utm_source=twitter`, ...). Canonicalising the URL before hashing makes
those one row. Hand-written on the standard library because no well-kept package does exactly
this (w3lib's `canonicalize_url` keeps tracking parameters; `courlan` pulls in a crawler's
dependencies): the rules are short and listed here.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only say how the reader got to the article. Compared lower-case;
# every `utm_*` parameter is dropped as well.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid",
        "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "wt.mc_id",
        "cmpid", "ocid", "s_cid", "soc_src", "soc_trk", "sr_share", "guccounter", "guce_referrer",
        "guce_referrer_sig", "ito", "ref_src", "ref_url", "spm", "__twitter_impression",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    key = name.lower()
    return key.startswith("utm_") or key in TRACKING_PARAMS


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and tracking parameters dropped,
    remaining parameters sorted (their order carries no meaning), empty path -> '/'.

    Raises ValueError for anything that is not an absolute http(s) URL.
    """
    parts = urlsplit((url or "").strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if parts.port is not None and parts.port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{parts.port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k))
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query, doseq=True), ""))


def article_id(url: str) -> str:
    """The key of `news_articles`: sha256 of the canonical URL, first 32 hex digits (128 bits)."""
    return hashlib.sha256(canonical_url(url).encode("utf-8")).hexdigest()[:32]
