"""A forked peer process driven step by step, for cases where two processes
in different namespaces take turns (upstream's pipe handshakes).

    with Peer() as p:
        p.run(fn, *args)        # runs fn in the peer, returns its value or re-raises

State carries over between steps inside the peer (it is one process). Errors
come back as in helpers.proc.in_child."""
import os
import pickle
import traceback

import pytest


class Peer:
    def __init__(self):
        self._cmd_r, self._cmd_w = os.pipe()
        self._res_r, self._res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            self._serve()
        os.close(self._cmd_r)
        os.close(self._res_w)

    def _serve(self):
        os.close(self._cmd_w)
        os.close(self._res_r)
        try:
            while True:
                size = int.from_bytes(_read_exact(self._cmd_r, 8), "little")
                if size == 0:
                    break
                fn, args = pickle.loads(_read_exact(self._cmd_r, size))
                try:
                    out = ("return", fn(*args))
                except pytest.skip.Exception as e:
                    out = ("skip", e.msg)
                except BaseException as e:  # noqa: BLE001 - sent back to the test
                    out = ("raise", e, "".join(traceback.format_exception(e)))
                try:
                    data = pickle.dumps(out)
                except Exception:
                    data = pickle.dumps(("text", out[-1] if out[0] == "raise" else repr(out)))
                os.write(self._res_w, len(data).to_bytes(8, "little") + data)
        finally:
            os._exit(0)

    def run(self, fn, *args):
        data = pickle.dumps((fn, args))
        os.write(self._cmd_w, len(data).to_bytes(8, "little") + data)
        size = int.from_bytes(_read_exact(self._res_r, 8), "little")
        out = pickle.loads(_read_exact(self._res_r, size))
        if out[0] == "return":
            return out[1]
        if out[0] == "skip":
            pytest.skip(out[1])
        if out[0] == "raise":
            out[1].add_note(f"raised in the peer process:\n{out[2]}")
            raise out[1]
        raise AssertionError(f"peer failed:\n{out[1]}")

    def close(self):
        if self.pid:
            try:
                os.write(self._cmd_w, (0).to_bytes(8, "little"))
            except OSError:
                pass
            os.close(self._cmd_w)
            os.close(self._res_r)
            os.waitpid(self.pid, 0)
            self.pid = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("peer process went away")
        buf += chunk
    return buf
