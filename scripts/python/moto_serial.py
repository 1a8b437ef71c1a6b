"""moto server for netmon's tests, with requests applied one at a time.

moto's backends are not thread-safe: two concurrent UpdateItems of one DynamoDB item can lose
one update, and a TransactWriteItems that fails a condition restores a deep copy of the table
taken before it ran, undoing whatever other requests committed meanwhile. DynamoDB does
neither, so tests of netmon's concurrency (several writers of one schedule shard, concurrent
alerters) would test moto's races instead. This wrapper runs moto's own WSGI application behind
one lock, so every request is atomic, as on AWS.

The only requests left outside the lock are SQS long polls (ReceiveMessage with
WaitTimeSeconds), which sleep inside moto waiting for messages; holding the lock through them
would stall every other request. moto's SQS queue code tolerates them running alongside.

Usage (scripts/emulator does this): python moto_serial.py -H 127.0.0.1 -p PORT
"""

import argparse
import io
import json
import os
import signal
import sys
import threading
import urllib.parse

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def is_long_poll(environ, body: bytes) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        if target != "AmazonSQS.ReceiveMessage":
            return False
        try:
            wait = json.loads(body or b"{}").get("WaitTimeSeconds", 0)
        except ValueError:
            return False
    elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        # The query protocol (older SDKs and CLIs).
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action") != ["ReceiveMessage"]:
            return False
        wait = (form.get("WaitTimeSeconds") or ["0"])[0]
    else:
        return False
    try:
        return int(wait) > 0
    except (TypeError, ValueError):
        return False


class Serialized:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if is_long_poll(environ, body):
            return self.app(environ, start_response)
        with self.lock:
            # The whole response is produced under the lock: moto computes it lazily in places.
            return [b"".join(self.app(environ, start_response))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
