"""A TCP proxy that can make the server behind it look down or hung, for fault tests.

- `pass`: bytes flow both ways.
- `hang`: like a server stopped with SIGSTOP: connections are still accepted (the kernel's
  backlog does that for a stopped server) but nothing is forwarded, in either direction, until
  the mode changes; what was sent meanwhile is delivered afterwards, as a resumed server would
  process it.
- `down`: like a crashed server: the listening socket is closed (connection refused) and every
  open connection is cut.

It binds 127.0.0.1 on a port below 32768 (the ephemeral range starts there on these machines).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

PORT_RANGE = range(21000, 22000)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False

    # -- control ---------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        for port in PORT_RANGE:
            try:
                self._listen(port)
            except OSError:
                continue
            self.port = port
            return self
        raise RuntimeError("no free port for the fault proxy")

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "hang", "down"), mode
        previous, self.mode = self.mode, mode
        if mode == "down":
            self._close_listener()
            with self._lock:
                conns, self._conns = list(self._conns), set()
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.close()
        elif previous == "down":
            self._listen(self.port)

    def stop(self) -> None:
        self._stopped = True
        self.set_mode("down")

    # -- internals -------------------------------------------------------------------------------

    def _listen(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            # shutdown wakes the thread blocked in accept(); close alone would leave the port
            # bound until that accept returned.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while self.mode == "hang" and not self._stopped:
            time.sleep(0.02)  # accepted by the backlog, not yet "served"
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns |= {client, upstream}
        pair = {client: upstream, upstream: client}
        try:
            while not self._stopped and self.mode != "down":
                if self.mode == "hang":
                    time.sleep(0.02)
                    continue
                ready, _, _ = select.select(list(pair), [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._conns -= set(pair)
