"""Answers of the project's httpx path handed back to libraries that speak `requests` (praw, ccxt).

Both mount a `requests` adapter whose `send` gets its answer through httpx (the replay transport,
or the shared SourceClient); this turns that httpx answer into the `requests.Response` they expect.
"""

from __future__ import annotations

import httpx
import requests
from requests.structures import CaseInsensitiveDict


def requests_response(answer: httpx.Response, request: requests.PreparedRequest) -> requests.Response:
    """`answer` (already read) as the `requests.Response` to `request`."""
    response = requests.Response()
    response.status_code = answer.status_code
    response.reason = answer.reason_phrase
    response.headers = CaseInsensitiveDict(answer.headers)
    response._content = answer.content
    response.encoding = "utf-8"
    response.url = request.url
    response.request = request
    return response
