#!/usr/bin/env python3
"""Records every byte a real nats-server sends during a short scripted session.

Usage (from the repository root):

    python3 nats-proto/tests/data/record_session.py [path/to/nats-server]

Starts the server on 127.0.0.1 at a free port, talks raw TCP to it (nothing else is contacted),
and writes the server's bytes to nats-proto/tests/data/session.bin. The test
`nats-proto/tests/real_session.rs` parses that file; after re-recording, update the few
recorded facts it pins (server version) if the server changed.
"""

import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "session.bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hpub(subject, reply, headers, payload):
    block = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % kv for kv in headers) + b"\r\n"
    args = [subject] + ([reply] if reply else []) + [b"%d" % len(block), b"%d" % (len(block) + len(payload))]
    return b"HPUB " + b" ".join(args) + b"\r\n" + block + payload + b"\r\n"


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else "nats-server"
    port = free_port()
    proc = subprocess.Popen([server, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("nats-server did not start")
        received = bytearray()

        def read_until_pong(count):
            # Every op here answers in order, so the n-th PONG comes after everything before it.
            while received.count(b"PONG\r\n") < count:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    raise SystemExit("timed out; got %r" % bytes(received[-400:]))
                if not chunk:
                    raise SystemExit("server closed the connection: %r" % bytes(received[-300:]))
                received.extend(chunk)

        # The handshake as clients do it: CONNECT + PING, then wait for the PONG (the server
        # follows it with an INFO carrying `connect_info`).
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"tls_required":false,'
                     b'"name":"nats-proto-recorder","lang":"python","version":"0.1.0",'
                     b'"protocol":1,"echo":true,"headers":true,"no_responders":true}\r\nPING\r\n')
        read_until_pong(1)
        big = bytes(range(256)) * 12  # 3072 bytes, every byte value, CR and LF included
        sock.sendall(b"".join([
            b"SUB greet.* 1\r\n",
            b"SUB _INBOX.rec.* 2\r\n",
            b"PUB greet.joe 5\r\nhello\r\n",
            b"PUB greet.ann _INBOX.rec.1 0\r\n\r\n",
            hpub(b"greet.hdr", None, [(b"Nats-Msg-Id", b"id-1"), (b"X-Trace", b"a b c")], b"with headers"),
            b"PUB greet.big %d\r\n" % len(big) + big + b"\r\n",
            # A request to a subject nobody listens on: the server answers 503 on the reply.
            b"PUB nobody.home _INBOX.rec.2 4\r\nping\r\n",
            b"PING\r\n",
        ]))
        read_until_pong(2)
        sock.close()
    finally:
        proc.terminate()
        proc.wait()
    with open(OUT, "wb") as f:
        f.write(received)
    print(f"wrote {len(received)} bytes to {OUT}")


if __name__ == "__main__":
    main()
