"""`WS /ws/prices`: new price observations as they land (see feed.py for where they come from).

Connect with the key in the `X-API-Key` header, or `?api_key=` for browsers (which cannot
set headers on a WebSocket); optional `?symbols=BTC,ETH`. Needs a trading key. Messages:
`{"type": "hello", "mode": "redis"|"polling", "symbols": [...]|null}` first, then
`{"type": "price_observations", "mode": ..., "rows": [...]}` and, when idle,
`{"type": "heartbeat"}` every 30 s. Refusals send `{"type": "error", "status", "detail"}`
and close with code 4000 + the HTTP status (4401, 4403, 4404, 4422, 4429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from crypto_assets.api.auth import authorize
from crypto_assets.api.state import SYMBOLS_HINT

router = APIRouter()
log = logging.getLogger(__name__)
HEARTBEAT_S = 30.0
MAX_SYMBOLS = 200


# What sending to a client that already left raises: Starlette turns the server's
# "client disconnected" (an OSError) into WebSocketDisconnect(1006); uvicorn raises
# RuntimeError when the connection dropped while the handshake was being answered (its
# transport was closing at accept, so it still expects an accept).
GONE = (WebSocketDisconnect, OSError, RuntimeError)
REFUSAL_DRAIN_S = 1.0


async def _refuse(websocket: WebSocket, status: int, detail: str) -> bool:
    """Send the error and close with 4000 + status. A client that disconnected before the
    refusal went out is not an error of ours: nothing more to send, no traceback (issue 19).
    Returns whether the client got the refusal."""
    try:
        await websocket.send_json({"type": "error", "status": status, "detail": detail})
        await websocket.close(code=4000 + status)
    except GONE as exc:
        log.info("WebSocket refusal %d not delivered: the client already left (%s)", status, type(exc).__name__)
        # Let the server notice the lost connection before we return: returning while it still
        # waits for the handshake makes uvicorn log "ASGI callable returned without completing
        # handshake" as an error.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.receive(), timeout=REFUSAL_DRAIN_S)
        return False
    return True


async def _symbols(api, text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    wanted = {s.strip().upper() for s in text.split(",") if s.strip()}
    if not wanted or len(wanted) > MAX_SYMBOLS:
        raise HTTPException(422, f"symbols must list 1 to {MAX_SYMBOLS} tickers")
    unknown = sorted(wanted - await api.known_symbols())
    if unknown:
        raise HTTPException(404, f"unknown symbols {unknown[:10]}: {SYMBOLS_HINT}")
    return frozenset(wanted)


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()  # clients need not send anything; this notices them leaving


@router.websocket("/ws/prices")
async def prices_feed(websocket: WebSocket):
    api = websocket.app.state.api
    try:
        await websocket.accept()
    except GONE:
        return  # the client left during the handshake
    client = websocket.client.host if websocket.client else "unknown"
    presented = websocket.headers.get("x-api-key") or websocket.query_params.get("api_key")
    try:
        await authorize(api, presented, "trading", client)
        symbols = await _symbols(api, websocket.query_params.get("symbols"))
    except HTTPException as exc:
        api.metrics.ws_connections.labels("refused").inc()
        await _refuse(websocket, exc.status_code, str(exc.detail))
        return
    api.metrics.ws_connections.labels("accepted").inc()
    sub = await api.feed.subscribe(symbols)
    leaving = asyncio.create_task(_wait_for_disconnect(websocket))
    try:
        await websocket.send_json({"type": "hello", "mode": api.feed.mode,
                                   "symbols": sorted(symbols) if symbols else None})
        while True:
            getting = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait({getting, leaving}, timeout=HEARTBEAT_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if leaving in done:
                getting.cancel()
                break
            if getting in done:
                await websocket.send_json(getting.result())
            else:
                getting.cancel()
                await websocket.send_json({"type": "heartbeat", "mode": api.feed.mode})
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        api.feed.unsubscribe(sub)
        leaving.cancel()
