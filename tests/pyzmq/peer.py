#!/usr/bin/env python3
"""A scriptable libzmq peer (pyzmq) for ferromq's interop tests.

Usage: peer.py '<json config>'   (or peer.py <path to a json file>)

Driven over stdin/stdout, one line per command and per reply, flushed after each line.
See tests/pyzmq/mod.rs for the Rust side and the list of config keys and commands.

Replies:      BOUND <endpoint> | CONNECTED | READY | SENT | SENT <n> | TIMEOUT
              MSG <hex|-> ... | META <property> <value|-> | ECHOED <n> | GOT <n>
              BAD <index> <detail> | SLEPT | OK | BYE | ERROR <type>: <message>
Unprompted:   EVENT <name> <value> <endpoint|->     (socket monitor, if "monitor": true)
              ZAP <status code> <user id|-> <status text>   (ZAP handler, if "zap" is set)
"""

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

_out_lock = threading.Lock()


def out(line):
    """Prints one whole line and flushes it; safe from any thread."""
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def fail(exc):
    """Reports an exception and exits at once (no context teardown that could hang)."""
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()
    message = str(exc).replace("\n", " ")
    out(f"ERROR {type(exc).__name__}: {message}")
    os._exit(1)


try:
    import zmq
    import zmq.auth
    from zmq.auth.thread import ThreadAuthenticator
    from zmq.utils.monitor import recv_monitor_message
except BaseException as exc:  # noqa: BLE001 - reported to the test
    fail(exc)


SOCKET_TYPES = (
    "PUSH", "PULL", "PUB", "SUB", "XPUB", "XSUB",
    "REQ", "REP", "DEALER", "ROUTER", "PAIR",
)

CERT_TEMPLATE = """#   ZeroMQ CURVE Public Certificate (written by ferromq's tests/pyzmq/peer.py)

metadata
curve
    public-key = "{key}"
"""


def to_hex(frame):
    data = bytes(frame)
    return data.hex() if data else "-"


def from_hex(word):
    return b"" if word == "-" else bytes.fromhex(word)


def numbered(i, size):
    return i.to_bytes(4, "big") + bytes([i % 251]) * (size - 4)


class ReportingAuthenticator(ThreadAuthenticator):
    """A ThreadAuthenticator that prints each ZAP decision as a `ZAP` line."""

    def _send_zap_reply(self, request_id, status_code, status_text, user_id="anonymous"):
        shown = user_id if status_code == b"200" else ""
        if isinstance(shown, bytes):
            shown = shown.decode("utf-8", "replace")
        text = status_text.decode("utf-8", "replace") if isinstance(status_text, bytes) else str(status_text)
        out(f"ZAP {status_code.decode()} {shown or '-'} {text}")
        super()._send_zap_reply(request_id, status_code, status_text, user_id)


def monitor_loop(mon):
    try:
        while True:
            evt = recv_monitor_message(mon)
            event_id = int(evt["event"])
            try:
                name = zmq.Event(event_id).name or str(event_id)
            except ValueError:
                name = str(event_id)
            endpoint = evt["endpoint"]
            if isinstance(endpoint, bytes):
                endpoint = endpoint.decode("utf-8", "replace")
            out(f"EVENT {name} {evt['value']} {endpoint or '-'}")
            if event_id == zmq.EVENT_MONITOR_STOPPED:
                break
    except zmq.ContextTerminated:
        pass
    except BaseException as exc:  # noqa: BLE001
        fail(exc)
    finally:
        mon.close(0)


class Peer:
    def __init__(self, config):
        self.config = config
        self.ctx = zmq.Context()
        self.auth = None
        self.monitor_thread = None
        self.sock = None

    def start_authenticator(self, zap):
        auth = ReportingAuthenticator(self.ctx)
        auth.start()
        self.auth = auth
        domain = zap.get("domain", "*")
        if zap.get("allow"):
            auth.allow(*zap["allow"])
        if zap.get("deny"):
            auth.deny(*zap["deny"])
        if zap.get("plain") is not None:
            auth.configure_plain(domain, dict(zap["plain"]))
        keys = zap.get("curve_keys")
        if keys == "any":
            auth.configure_curve(domain, zmq.auth.CURVE_ALLOW_ANY)
        elif keys is not None:
            # configure_curve reads the directory once, so it goes right after: the test
            # ends this process with a kill, which leaves no chance to remove it later.
            cert_dir = tempfile.mkdtemp(prefix="ferromq-pyzmq-certs-")
            try:
                for i, key in enumerate(keys):
                    if len(key) != 40:
                        raise ValueError(f"curve key {key!r} is not 40 Z85 characters")
                    path = os.path.join(cert_dir, f"client{i}.key")
                    with open(path, "w", encoding="utf8") as f:
                        f.write(CERT_TEMPLATE.format(key=key))
                auth.configure_curve(domain, cert_dir)
            finally:
                shutil.rmtree(cert_dir, ignore_errors=True)
            loaded = auth.certs.get(domain, {})
            if len(loaded) != len(set(keys)):
                raise RuntimeError(f"authenticator loaded {len(loaded)} of {len(keys)} curve keys")

    def setup(self):
        c = self.config
        kind = c["type"]
        if kind not in SOCKET_TYPES:
            raise ValueError(f"unknown socket type {kind!r}")
        if c.get("zap") is not None:
            self.start_authenticator(c["zap"])

        sock = self.ctx.socket(getattr(zmq, kind))
        self.sock = sock
        sock.setsockopt(zmq.LINGER, int(c.get("linger", 2000)))
        sock.setsockopt(zmq.RCVTIMEO, int(c.get("rcvtimeo", 20000)))
        sock.setsockopt(zmq.SNDTIMEO, int(c.get("sndtimeo", 20000)))
        if c.get("sndhwm") is not None:
            sock.setsockopt(zmq.SNDHWM, int(c["sndhwm"]))
        if c.get("rcvhwm") is not None:
            sock.setsockopt(zmq.RCVHWM, int(c["rcvhwm"]))
        if c.get("immediate") is not None:
            sock.setsockopt(zmq.IMMEDIATE, 1 if c["immediate"] else 0)
        if c.get("routing_id") is not None:
            sock.setsockopt(zmq.ROUTING_ID, c["routing_id"].encode())
        if c.get("zap_domain") is not None:
            sock.setsockopt(zmq.ZAP_DOMAIN, c["zap_domain"].encode())
        if c.get("plain_server"):
            sock.setsockopt(zmq.PLAIN_SERVER, 1)
        if c.get("plain_username") is not None:
            sock.setsockopt(zmq.PLAIN_USERNAME, c["plain_username"].encode())
        if c.get("plain_password") is not None:
            sock.setsockopt(zmq.PLAIN_PASSWORD, c["plain_password"].encode())
        if c.get("curve_server"):
            sock.setsockopt(zmq.CURVE_SERVER, 1)
        for key, opt in (
            ("curve_publickey", zmq.CURVE_PUBLICKEY),
            ("curve_secretkey", zmq.CURVE_SECRETKEY),
            ("curve_serverkey", zmq.CURVE_SERVERKEY),
        ):
            if c.get(key) is not None:
                sock.setsockopt(opt, c[key].encode())
        if kind == "SUB":
            for prefix in c.get("subscribe", []):
                sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())

        if c.get("monitor"):
            mon = sock.get_monitor_socket()
            self.monitor_thread = threading.Thread(target=monitor_loop, args=(mon,), daemon=True)
            self.monitor_thread.start()

        if c.get("bind") is not None:
            sock.bind(c["bind"])
            out(f"BOUND {sock.getsockopt(zmq.LAST_ENDPOINT).decode()}")
        elif c.get("connect") is not None:
            sock.connect(c["connect"])
            out("CONNECTED")
        else:
            raise ValueError("config needs `bind` or `connect`")

        if kind == "XSUB":
            for prefix in c.get("subscribe", []):
                sock.send(b"\x01" + prefix.encode())
        out("READY")

    def recv(self):
        """One multipart message as Frames, or None on timeout."""
        try:
            return self.sock.recv_multipart(copy=False)
        except zmq.Again:
            return None

    def command(self, line):
        words = line.split()
        if not words:
            return True
        cmd, args = words[0].upper(), words[1:]
        sock = self.sock
        if cmd == "SEND":
            try:
                sock.send_multipart([from_hex(w) for w in args] or [b""])
                out("SENT")
            except zmq.Again:
                out("TIMEOUT")
        elif cmd == "RECV":
            frames = self.recv()
            out("TIMEOUT" if frames is None else "MSG " + " ".join(to_hex(f) for f in frames))
        elif cmd == "RECVMETA":
            prop = args[0]
            frames = self.recv()
            if frames is None:
                out("TIMEOUT")
            else:
                out("MSG " + " ".join(to_hex(f) for f in frames))
                try:
                    value = frames[-1].get(prop)
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    value = "-" if value is None or value == "" else str(value)
                except zmq.ZMQError:
                    value = "-"
                out(f"META {prop} {value}")
        elif cmd == "ECHO":
            n = int(args[0])
            for _ in range(n):
                sock.send_multipart(sock.recv_multipart())
            out(f"ECHOED {n}")
        elif cmd == "SENDN":
            n, size = int(args[0]), int(args[1])
            if size < 4:
                raise ValueError("SENDN size must be at least 4")
            for i in range(n):
                try:
                    sock.send(numbered(i, size))
                except zmq.Again:
                    out(f"TIMEOUT {i}")
                    return True
            out(f"SENT {n}")
        elif cmd == "RECVN":
            n = int(args[0])
            for i in range(n):
                try:
                    frames = sock.recv_multipart()
                except zmq.Again:
                    out(f"BAD {i} timeout")
                    return True
                if len(frames) != 1 or len(frames[0]) < 4:
                    out(f"BAD {i} shape:{[len(f) for f in frames]}")
                    return True
                got = int.from_bytes(frames[0][:4], "big")
                if got != i:
                    out(f"BAD {i} number:{got}")
                    return True
                body = frames[0][4:]
                if body != bytes([i % 251]) * len(body):
                    out(f"BAD {i} body")
                    return True
            out(f"GOT {n}")
        elif cmd == "SUBSCRIBE" or cmd == "UNSUBSCRIBE":
            prefix = from_hex(args[0]) if args else b""
            if self.config["type"] == "XSUB":
                sock.send((b"\x01" if cmd == "SUBSCRIBE" else b"\x00") + prefix)
            else:
                sock.setsockopt(zmq.SUBSCRIBE if cmd == "SUBSCRIBE" else zmq.UNSUBSCRIBE, prefix)
            out("OK")
        elif cmd == "SLEEPMS":
            time.sleep(int(args[0]) / 1000.0)
            out("SLEPT")
        elif cmd == "QUIT":
            self.close()
            out("BYE")
            return False
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return True

    def close(self):
        if self.sock is not None:
            if self.monitor_thread is not None:
                try:
                    self.sock.disable_monitor()
                except zmq.ZMQError:
                    pass
                self.monitor_thread.join(2.0)
            self.sock.close()  # lingers as configured
            self.sock = None
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        # Ends a monitor thread still blocked in recv (ContextTerminated) too.
        self.ctx.term()


def main():
    arg = sys.argv[1]
    if arg.lstrip().startswith("{"):
        config = json.loads(arg)
    else:
        with open(arg, encoding="utf8") as f:
            config = json.load(f)
    peer = Peer(config)
    peer.setup()
    while True:
        line = sys.stdin.readline()
        if not line:  # EOF: the test is gone
            peer.close()
            break
        if not peer.command(line.strip()):
            break
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        fail(exc)
