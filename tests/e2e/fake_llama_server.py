"""A stand-in for ``python -m llama_cpp.server`` that dies as a mis-built llama.cpp does.

Run as the ``python`` of a ``local:`` provider (tests make it executable with a
shebang): it takes the server's arguments, reads what to do from the ``--model``
file, and serves a real OpenAI-compatible endpoint on loopback until told to die:

- ``sigill-at-start``: logs a line, then kills itself with SIGILL before binding.
- ``sigill-after N``: answers N streamed chat requests, then dies of SIGILL on the next.
- ``http-500``: stays up, logs a decoding error and answers every chat request with HTTP 500.

Every chat request is logged (``fake-llama: chat request K``), so a test can count
what reached the server. It never dumps core.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import resource
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def die_of_sigill() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no core file anywhere
    print("fake-llama: ggml_compute_forward: tilezero", flush=True)
    # Directed at this thread, as a faulting instruction is: a process-wide kill() may be
    # delivered to another thread a moment later, while this one still answers.
    signal.pthread_kill(threading.get_ident(), signal.SIGILL)
    time.sleep(60)  # never reached: SIGILL's default action ends the process


def main() -> None:
    if sys.argv[1:3] != ["-m", "llama_cpp.server"]:
        sys.exit(f"fake-llama: unexpected arguments {sys.argv[1:]}")
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--model_alias")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args, _ = parser.parse_known_args(sys.argv[3:])
    signal.signal(signal.SIGILL, signal.SIG_DFL)  # the main thread only may set it
    mode = open(args.model, encoding="utf-8").read().split()
    print(f"fake-llama: loading {args.model} ({' '.join(mode)})", flush=True)
    if mode[0] == "sigill-at-start":
        die_of_sigill()
    answers = int(mode[1]) if len(mode) > 1 else 0
    served = 0

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *items: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"data": [{"id": args.model_alias}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            nonlocal served
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            served += 1
            print(f"fake-llama: chat request {served}", flush=True)
            if mode[0] == "http-500":
                print("fake-llama: llama_decode failed: KV cache is full", flush=True)
                body = b'{"error": {"message": "internal error"}}'
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if served > answers:
                die_of_sigill()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for delta, finish in (
                ({"role": "assistant"}, None),
                ({"content": "Paris"}, None),
                ({}, "stop"),
            ):
                chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake-llama: listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
