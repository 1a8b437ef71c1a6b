#!/usr/bin/env python3
"""Prints every request it receives and answers 200: a stand-in webhook channel for LocalStack
runs (the notifier Lambda reaches it as http://host.docker.internal:PORT/). Standard library only.
  python3 localstack/webhook-receiver.py [PORT]      (default 18080; binds 0.0.0.0 so containers reach it)
"""
import http.server
import json
import sys
from datetime import datetime, timezone


class Handler(http.server.BaseHTTPRequestHandler):
    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        print(f"--- {stamp} {self.command} {self.path}", flush=True)
        for k in ("Content-Type", "User-Agent", "X-Netmon-Event-Id"):
            if self.headers.get(k):
                print(f"{k}: {self.headers[k]}")
        try:
            print(json.dumps(json.loads(body), indent=2))
        except ValueError:
            print(body.decode("utf-8", "replace"))
        sys.stdout.flush()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_GET = _handle

    def log_message(self, *args) -> None:  # the request is printed above
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    print(f"webhook receiver on 0.0.0.0:{port} (Ctrl-C stops it)", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
