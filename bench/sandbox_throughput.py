"""Sandbox throughput for a trivial function (GetCreditos), in requests per second.

Starts ``certsms sandbox`` in its own process (so client and server do not share a
GIL), then drives it from several threads over keep-alive connections for a fixed
time. Usage::

    .venv/bin/python -m bench.sandbox_throughput [--seconds 5] [--threads 8]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import subprocess
import sys
import threading
import time

from bench.harness import wait_listening
from certsms.worker.embedded_redis import free_port

AUTH = "Basic " + base64.b64encode(b"demo:demo-token").decode()


def _worker(port: int, stop_at: float, counts: list[int], errors: list[int], index: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    n = 0
    while time.monotonic() < stop_at:
        body = json.dumps({"Resp": "JSON", "n": f"{index}-{n}"})  # distinct: no repeat-spam
        try:
            connection.request("POST", "/v7/GetCreditos", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200 or b'"Res": "1"' not in payload:
                errors[index] += 1
            counts[index] += 1
        except (OSError, http.client.HTTPException):
            errors[index] += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n += 1
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "certsms.worker.cli",
            "sandbox",
            "--port",
            str(port),
            "--progression-interval-s",
            "0",
            "--block-threshold",
            "1000000000",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        counts = [0] * args.threads
        errors = [0] * args.threads
        started = time.monotonic()
        stop_at = started + args.seconds
        threads = [
            threading.Thread(target=_worker, args=(port, stop_at, counts, errors, i))
            for i in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed_s = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=10)
    total = sum(counts)
    print(
        json.dumps(
            {
                "function": "GetCreditos",
                "requests": total,
                "errors": sum(errors),
                "seconds": round(elapsed_s, 2),
                "requests_per_s": round(total / elapsed_s, 1),
                "client_threads": args.threads,
            }
        )
    )
    return 0 if sum(errors) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
