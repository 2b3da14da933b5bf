"""The Quix Streams peer: the application a Python team would write with Quix Streams to bridge
the shop's topic to Talon.One — a StreamingDataFrame that turns each record into its
Integration API call, makes it, and produces Talon.One's answer to an output topic.

It runs in a virtualenv of its own (``bench/peers/quix_streams/requirements.txt``: Quix
Streams pins an older confluent-kafka than talon-stream's), with talon-stream's translation
imported for the event → call step so that both send exactly the same requests. Transient
answers (409, 429, 5xx, no answer) are retried with back-off, as any such application would.

    python app.py --bootstrap HOST:PORT --input TOPIC --output TOPIC --group G \\
        --talon-url URL --api-key KEY
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from quixstreams import Application
from quixstreams.context import message_context

from talon_stream.core import TranslationOptions, decode_event, envelope_id, translate

_RETRY = {408, 409, 429, 500, 502, 503, 504}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--bootstrap", "--input", "--output", "--group", "--talon-url", "--api-key"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),  # stateless: keep the tree clean
    )
    source = app.topic(args.input, value_deserializer="bytes", key_deserializer="bytes")
    sink = app.topic(args.output, value_serializer="bytes", key_serializer="bytes")
    client = httpx.Client(
        base_url=args.talon_url,
        headers={"Authorization": f"ApiKey-v1 {args.api_key}", "Content-Type": "application/json"},
        timeout=10.0,
    )
    options = TranslationOptions()

    def call_talon(value: bytes) -> bytes:
        context = message_context()
        call = translate(decode_event(value), options)
        target = f"{call.path}?{urlencode(call.query)}" if call.query else call.path
        body = orjson.dumps(call.body) if call.body is not None else None
        key = envelope_id(context.topic, context.partition, context.offset)
        delay = 0.05
        while True:
            try:
                response = client.request(
                    call.method, target, content=body, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code not in _RETRY:
                break
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 5.0)
        answer: dict[str, Any] = {"status": response.status_code, "operation": call.operation}
        if response.content:
            answer["effects"] = response.json().get("effects", [])
        return orjson.dumps(answer)

    sdf = app.dataframe(source)
    sdf = sdf.apply(call_talon)
    sdf.to_topic(sink)
    app.run()


if __name__ == "__main__":
    main()
