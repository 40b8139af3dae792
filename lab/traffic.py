"""A TCP sender and receiver that ``lab traffic`` runs inside two lab nodes.

    python -m lab.traffic recv --port 5201          # prints "ready", then JSON
    python -m lab.traffic send ADDRESS 5201 BYTES   # prints JSON

TCP delivers exactly the payload sent, so the bytes received prove the path.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
import time

CHUNK = 64 * 1024


def _recv(port: int, timeout_s: float) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))  # noqa: S104 - inside a lab node only
        server.listen(1)
        server.settimeout(timeout_s)
        print("ready", flush=True)
        conn, _ = server.accept()
        conn.settimeout(timeout_s)
        total, start = 0, time.monotonic()
        with conn:
            while chunk := conn.recv(CHUNK):
                total += len(chunk)
        print(json.dumps({"received": total, "seconds": time.monotonic() - start}), flush=True)
    return 0


_NOT_YET = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ETIMEDOUT)
# a route that flaps while routing re-converges: the transfer is retried whole
_TRANSIENT = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET, errno.EPIPE)
TRANSIENT_EXIT = 3


def _connect(address: str, port: int, timeout_s: float, wait_s: float) -> socket.socket:
    """Connect, retrying for ``wait_s`` while the network has no route yet (routing
    protocols converge some seconds after a deploy or a node restart)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return socket.create_connection((address, port), timeout=timeout_s)
        except OSError as exc:
            if exc.errno not in _NOT_YET or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _send(address: str, port: int, nbytes: int, timeout_s: float, wait_s: float) -> int:
    payload = b"\xa5" * CHUNK
    try:
        conn = _connect(address, port, timeout_s, wait_s)
    except OSError as exc:
        print(f"cannot reach {address}:{port} after waiting {wait_s:.0f} s: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    start = time.monotonic()
    try:
        _stream(conn, payload, nbytes)
    except OSError as exc:
        if exc.errno in _TRANSIENT:
            print(f"route to {address} lost mid-transfer: {exc.strerror}", file=sys.stderr)
            return TRANSIENT_EXIT
        raise
    print(json.dumps({"sent": nbytes, "seconds": time.monotonic() - start}), flush=True)
    return 0


def _stream(conn: socket.socket, payload: bytes, nbytes: int) -> None:
    with conn:
        left = nbytes
        while left > 0:
            sent = conn.send(payload[: min(left, CHUNK)])
            left -= sent
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # wait for the receiver to close: everything has arrived


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m lab.traffic``."""
    parser = argparse.ArgumentParser(prog="lab.traffic")
    sub = parser.add_subparsers(dest="mode", required=True)
    recv = sub.add_parser("recv")
    recv.add_argument("--port", type=int, default=5201)
    recv.add_argument("--timeout", type=float, default=60.0)
    send = sub.add_parser("send")
    send.add_argument("address")
    send.add_argument("port", type=int)
    send.add_argument("bytes", type=int)
    send.add_argument("--timeout", type=float, default=60.0)
    send.add_argument("--wait", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.mode == "recv":
        return _recv(args.port, args.timeout)
    return _send(args.address, args.port, args.bytes, args.timeout, args.wait)


if __name__ == "__main__":
    sys.exit(main())
