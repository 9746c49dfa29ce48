"""HTTP ingest: ``POST /v1/events``.

The body is a JSON array of events or JSON Lines (``Content-Encoding: gzip`` accepted). The
answer has counts and one result per line: ``accepted``, ``duplicate`` (already stored:
retrying a batch is safe) or ``rejected`` with the reasons. Good lines are stored even when
others in the batch are refused.
"""

from __future__ import annotations

import zlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from allscene.events.ingest import BadInput, Ingestor

router = APIRouter(tags=["events"])


def get_ingestor(request: Request) -> Ingestor:
    return request.app.state.ingestor


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress every gzip member (concatenated members are valid gzip); refuse a
    truncated stream rather than store part of a batch."""
    out, rest = bytearray(), body
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise HTTPException(400, f"body: not valid gzip ({exc})") from exc
        if len(out) > limit or d.unconsumed_tail:
            raise HTTPException(413, f"body: more than {limit:,} bytes after decompression")
        if not d.eof:
            raise HTTPException(400, "body: gzip stream is truncated")
        rest = d.unused_data
    return bytes(out)


@router.post("/v1/events", response_class=Response,
             summary="Ingest a batch of events (JSON array or JSON Lines, gzip ok)")
async def post_events(request: Request,
                      ingestor: Annotated[Ingestor, Depends(get_ingestor)]) -> Response:
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body: more than {limit:,} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"body: more than {limit:,} bytes")
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = _gunzip(body, limit)
    source = f"http:{request.client.host if request.client else '-'}"
    try:
        report = await run_in_threadpool(ingestor.ingest_body, body, source)
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from exc
    return Response(orjson.dumps(report.as_dict()), media_type="application/json")
