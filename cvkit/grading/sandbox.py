"""Run one student's notebook in a sandboxed process and call its functions from the grader.

The grader (trusted) and the student's code (untrusted) live in different processes. The student's
notebook runs in :mod:`cvkit.grading._worker` under the limits below; the grader never runs a line of it.
What the grader holds are :class:`RemoteFunction` proxies: calling one sends the arguments to the sandbox
and gets the result back as plain data (numbers, strings, tensors, arrays, lists, tuples, dicts), within a
time limit and a size limit. Checks such as ``check.iou(my_iou)`` therefore run in the grader's process,
where monkeypatching inside the notebook cannot reach them.

What the sandbox guarantees (Linux):

- its own process and process group, killed when the submission is done, after a time limit per cell,
  per call and per submission, or when it sends more than the result limit;
- an address-space (memory) limit, a limit on the size of any file it writes, no core dumps;
- with Landlock (Linux 5.13+): it reads only the Python installation, the cvkit package and its ``data/``
  folder, and writes only in its temporary working folder (a copy of the student's folder); no TCP with
  Landlock ABI 4+, no signals to outside processes with ABI 6+ -- so it cannot read the instructor's
  notebooks, the hidden tests, other submissions or the grades, nor write anywhere else;
- when the grader runs as root and ``nobody`` can reach the Python installation: it runs as ``nobody``.

Without Landlock (macOS, old kernels) only the process, time and memory limits hold: the student's code
can then read whatever the instructor's user can read. :func:`probe` says which guarantee is in force.
"""
from __future__ import annotations

import builtins
import functools
import json
import os
import pickle
import pwd
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvkit.grading import _worker

WORKER = Path(_worker.__file__).resolve()


@dataclass
class Limits:
    """How much one submission may take."""

    call_s: float = 30.0              # one call of a student's function
    cell_s: float = 120.0             # one cell of the student's notebook
    submission_s: float = 900.0       # everything for one student, restarts included
    memory_mb: int = 8192             # address space of the sandbox (torch alone maps about 4 GB)
    result_mb: int = 64               # data one call may send back
    file_mb: int = 256                # any one file the notebook writes
    copy_mb: int = 200                # the student's folder copied into the sandbox (larger files are left out)
    restarts: int = 4                 # fresh starts after a crash or a time-out


class SandboxLost(Exception):
    """The sandbox is gone: it crashed, exceeded a limit or broke the protocol."""


class GradingTimeout(SandboxLost):
    """The student's code did not finish within its time limit."""


class SandboxCrashed(SandboxLost):
    """The student's code killed its own process (segfault, os._exit, out of memory...)."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


@functools.lru_cache(maxsize=1)
def _isolated_sys_path() -> tuple[str, ...]:
    """``sys.path`` of ``python -I``, as the worker sees it (without the grader's working folder)."""
    done = subprocess.run([sys.executable, "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
                          capture_output=True, text=True, timeout=120, check=True)
    return tuple(json.loads(done.stdout))


def readable_paths() -> list[str]:
    """What the sandbox may read: the Python installation, its packages, cvkit and its data, the system libraries."""
    import cvkit
    from cvkit.datasets import data_dir

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(cvkit.__file__).resolve().parent), str(data_dir()),
             str(Path(sys.executable).resolve().parent)}
    paths.update(p for p in sysconfig.get_paths().values())
    paths.update(p for p in _isolated_sys_path() if p and Path(p).is_dir())
    paths.update(("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/opt"))
    return sorted(str(Path(p).resolve()) for p in paths if Path(p).exists())


def exposed_by(paths: list[str], secrets: list[Path]) -> list[tuple[Path, str]]:
    """The secrets (instructor notebooks, output folder...) that lie under a readable path."""
    found = []
    for secret in secrets:
        resolved = secret.resolve()
        for p in paths:
            if resolved == Path(p) or Path(p) in resolved.parents:
                found.append((secret, p))
                break
    return found


def _nobody() -> tuple[int, int] | None:
    if os.name != "posix" or os.getuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    import cvkit

    for needed in (sys.base_prefix, sys.prefix, Path(cvkit.__file__).parent):   # can nobody reach Python?
        for folder in (Path(needed).resolve(), *Path(needed).resolve().parents):
            if not os.stat(folder).st_mode & 0o001:
                return None
    return entry.pw_uid, entry.pw_gid


def _decode(value: Any, blob: bytes, offsets: list[list[int]], depth: int = 0) -> Any:
    """Data from the sandbox back into Python objects, without running any of its code."""
    if depth > _worker.MAX_DEPTH + 1 or not isinstance(value, dict):
        raise ValueError("malformed result")
    kind = value.get("t")
    if kind == "atom" and (value["v"] is None or isinstance(value["v"], (bool, str))):
        return value["v"]
    if kind == "int":
        text = str(value["v"])
        if len(text) > 4000:
            raise ValueError("integer too long")
        return int(text)
    if kind == "float":
        return float(value["v"])
    if kind in ("tensor", "ndarray"):
        start, size = offsets[int(value["blob"])]
        raw = blob[start:start + size]
        shape = [int(s) for s in value["shape"]]
        if kind == "ndarray":
            dtype = np.dtype(str(value["dtype"]))
            if dtype.hasobject:
                raise ValueError("object arrays are not data")
            return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        dtype = getattr(torch, str(value["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {value['dtype']!r}")
        if int(np.prod(shape)) == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
    if kind in ("list", "tuple"):
        items = [_decode(v, blob, offsets, depth + 1) for v in value["v"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {_decode(k, blob, offsets, depth + 1): _decode(v, blob, offsets, depth + 1) for k, v in value["v"]}
    raise ValueError(f"unknown kind {kind!r}")


def _student_exception(kind: str, message: str, lineno: int) -> Exception:
    """An exception that reads like the one the student's code raised, at the student's line."""
    name = "".join(c for c in str(kind) if c.isalnum() or c == "_")[:80] or "Exception"
    builtin = getattr(builtins, name, None)
    err: Exception | None = None
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            err = builtin(message)
        except Exception:
            err = None
    if err is None:
        err = type(name, (Exception,), {})(message)
    try:                                   # raise it from a frame whose line number is the student's
        exec(compile("\n" * max(int(lineno) - 1, 0) + "raise err", "<your notebook>", "exec"), {"err": err})
    except Exception as raised:
        return raised
    return err


class Sandbox:
    """A sandboxed worker that has run one student's notebook; restarts it after a crash or time-out.

    Args:
        cells: ``(index, source)`` of the code cells to run, in order.
        files: the student's folder, copied into the sandbox's working folder (or None).
        limits: time, memory and size limits.
        env: extra environment variables for the notebook (``CVKIT_SMOKE`` and the like).
        read_paths: what the sandbox may read (default :func:`readable_paths`).
    """

    def __init__(self, cells: list[tuple[int, str]], files: Path | None = None, limits: Limits | None = None,
                 env: dict[str, str] | None = None, read_paths: list[str] | None = None) -> None:
        self.cells = cells
        self.limits = limits or Limits()
        self.env = env or {}
        self.read_paths = readable_paths() if read_paths is None else read_paths
        self.user = _nobody()
        self.workdir = Path(tempfile.mkdtemp(prefix="cvkit-grade-"))
        self.deadline = time.monotonic() + self.limits.submission_s
        self.skipped: dict[int, str] = {}        # cell index -> why it is left out
        self.cell_errors: list[tuple[int, str]] = []
        self.notes: list[str] = []
        self.isolation: dict[str, Any] = {}
        self.lost: SandboxLost | None = None     # why the current worker is gone
        self.events: list[str] = []              # "timeout" / "crashed", as they happen
        self.starts = 0
        self._proc: subprocess.Popen | None = None
        self._next_id = 0
        if files is not None:
            self._copy(files)
        os.chmod(self.workdir, 0o700)
        if self.user is not None:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.lchown(path, *self.user)

    # --- life cycle ---

    def _copy(self, folder: Path) -> None:
        budget = self.limits.copy_mb * 2**20
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not path.is_file() or ".ipynb_checkpoints" in path.parts:
                continue
            size = path.stat().st_size
            if size > budget:
                self.notes.append(f"{path.relative_to(folder)} was not copied into the sandbox (too large)")
                continue
            budget -= size
            target = self.workdir / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    def _environment(self) -> dict[str, str]:
        scripts = str(Path(sys.executable).parent)
        env = {"PATH": f"{scripts}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.workdir),
               "TMPDIR": str(self.workdir), "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": str(self.workdir / ".matplotlib"), "PYTHONDONTWRITEBYTECODE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
        if "CVKIT_DATA" in os.environ:
            env["CVKIT_DATA"] = os.environ["CVKIT_DATA"]
        env.update(self.env)
        return env

    def _spawn(self) -> None:
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), str(cmd_r), str(res_w)], pass_fds=(cmd_r, res_w),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=None if os.environ.get("CVKIT_SANDBOX_DEBUG") else subprocess.DEVNULL,   # the notebook's output is not kept
                cwd=self.workdir, env=self._environment(), start_new_session=True)
        finally:
            os.close(cmd_r)
            os.close(res_w)
        self._cmd, self._res = cmd_w, res_r
        self._buffer = b""
        self.starts += 1
        self.lost = None

    def kill(self) -> None:
        """Stop the worker and everything it started in its process group."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self._cmd, self._res):
            try:
                os.close(fd)
            except OSError:
                pass
        self._proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the wire ---

    def _send(self, message: dict) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            os.write(self._cmd, struct.pack(">Q", len(data)))   # pipes block: fine, the worker reads in a loop
            view = memoryview(data)
            while view:
                view = view[os.write(self._cmd, view):]
        except OSError:
            self._lose(SandboxCrashed(self._death()))

    def _read(self, size: int, deadline: float, doing: str) -> bytes:
        while len(self._buffer) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res], [], [], left)[0]:
                over = "submission" if deadline >= self.deadline else "limit"
                raise self._lose(GradingTimeout(
                    f"did not finish within the {'time limit for the whole submission' if over == 'submission' else doing}"))
            chunk = os.read(self._res, 1 << 20)
            if not chunk:
                raise self._lose(SandboxCrashed(self._death()))
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _receive(self, deadline: float, doing: str) -> tuple[dict, bytes]:
        (size,) = struct.unpack(">Q", self._read(8, deadline, doing))
        if size > self.limits.result_mb * 2**20 + 2**20:
            raise self._lose(SandboxCrashed(f"sent {size / 2**20:.0f} MB, more than the grader reads"))
        payload = self._read(size, deadline, doing)
        try:
            (head_size,) = struct.unpack(">I", payload[:4])
            header = json.loads(payload[4:4 + head_size])
            if not isinstance(header, dict):
                raise ValueError("not a dict")
        except (ValueError, struct.error) as err:
            raise self._lose(SandboxCrashed(f"sent something the grader cannot read ({err})")) from None
        return header, payload[4 + head_size:]

    def _death(self) -> str:
        try:
            code = self._proc.wait(timeout=5) if self._proc is not None else None
        except subprocess.TimeoutExpired:
            return "the Python process running your notebook closed its connection to the grader"
        if code is not None and code < 0:
            how = f"was killed by {_signal_name(code)}"
            if code == -signal.SIGKILL:
                how += " (out of memory?)"
        else:
            how = f"exited with status {code}"
        return f"the Python process running your notebook {how}"

    def _lose(self, err: SandboxLost) -> SandboxLost:
        self.lost = err
        self.events.append("timeout" if isinstance(err, GradingTimeout) else "crashed")
        self.kill()
        return err

    def _limit(self, seconds: float) -> float:
        return min(time.monotonic() + seconds, self.deadline)

    # --- running the notebook ---

    def start(self) -> None:
        """Run the notebook; a cell that crashes the process or runs past its limit is left out and the run repeated."""
        while True:
            if time.monotonic() >= self.deadline:
                raise self._lose(GradingTimeout("did not finish within the time limit for the whole submission"))
            if self.starts > self.limits.restarts:
                raise self._lose(SandboxCrashed(f"was restarted {self.limits.restarts} times; giving up"))
            self._spawn()
            self._send({"workdir": str(self.workdir), "memory_bytes": self.limits.memory_mb * 2**20,
                        "file_bytes": self.limits.file_mb * 2**20, "read_paths": self.read_paths,
                        "landlock": True, "uid": self.user[0] if self.user else None,
                        "gid": self.user[1] if self.user else None,
                        "cells": [(i, s) for i, s in self.cells if i not in self.skipped]})
            current = None
            try:
                header, _ = self._receive(self._limit(self.limits.cell_s), "while starting")
                self.isolation = header
                self.cell_errors = []
                while True:
                    header, _ = self._receive(self._limit(self.limits.cell_s),
                                              f"{self.limits.cell_s:g} s limit for one cell")
                    if header.get("event") == "cell":
                        current = int(header["index"])
                    elif header.get("event") == "ready":
                        self.cell_errors = [(int(i), f"{e.get('type')}: {e.get('message')}")
                                            for i, e in header.get("errors", [])]
                        return
            except SandboxLost as err:
                if current is None or isinstance(err, GradingTimeout) and time.monotonic() >= self.deadline:
                    raise
                self.skipped[current] = str(err)
                self.notes.append(f"cell {current} was left out: {err}" if isinstance(err, SandboxCrashed) else
                                  f"cell {current} was left out: it ran longer than {self.limits.cell_s:g} s")

    def ensure_running(self) -> None:
        """Start again after a crash or time-out (the notebook runs again, without the cells left out)."""
        if self._proc is None:
            self.start()

    def _request(self, message: dict, seconds: float, doing: str) -> tuple[dict, bytes]:
        if self._proc is None:
            raise self.lost or SandboxCrashed("the sandbox is not running")
        self._next_id += 1
        message = {**message, "id": self._next_id, "limit": self.limits.result_mb * 2**20}
        self._send(message)
        if self._proc is None:
            raise self.lost
        deadline = self._limit(seconds)
        while True:
            header, blob = self._receive(deadline, doing)
            if header.get("id") == self._next_id:
                return header, blob

    def lookup(self, names: list[str]) -> dict[str, dict]:
        """What each name is in the student's notebook: ``{"kind": "function" | "data" | "module" | "missing"}``."""
        header, _ = self._request({"op": "lookup", "names": list(names)}, self.limits.call_s, "time limit")
        found = header.get("found")
        if not isinstance(found, dict):
            raise self._lose(SandboxCrashed("sent something the grader cannot read"))
        return {name: found.get(name) if isinstance(found.get(name), dict) else {"kind": "missing"} for name in names}

    def _value(self, header: dict, blob: bytes) -> Any:
        if header.get("ok") is True:
            try:
                return _decode(header.get("value"), blob, header.get("blobs", []))
            except Exception as err:
                raise _student_exception("UnreadableResult", f"the grader could not read your result ({err})", 0)
        raise _student_exception(header.get("type", "Exception"), str(header.get("message", ""))[:2000],
                                 header.get("lineno") or 0)

    def get(self, name: str) -> Any:
        """The value of a (non-function) name in the student's notebook, as data."""
        return self._value(*self._request({"op": "get", "name": name}, self.limits.call_s, "time limit"))

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        """Call the student's function ``name`` in the sandbox; its result as data, or its exception."""
        try:
            message = {"op": "call", "name": name, "args": args, "kwargs": kwargs}
            pickle.dumps(message)
        except Exception as err:
            raise TypeError(f"the grader cannot send this input to the sandbox: {err}") from None
        seconds = self.limits.call_s
        return self._value(*self._request(message, seconds, f"{seconds:g} s limit for one call of your function"))


@dataclass
class RemoteFunction:
    """The student's function as the grader sees it: a call runs in the sandbox and returns data."""

    sandbox: Sandbox
    name: str
    calls: int = field(default=0)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.sandbox.call(self.name, args, kwargs)

    def __repr__(self) -> str:
        return f"<your function {self.name}>"


def probe(limits: Limits | None = None, read_paths: list[str] | None = None) -> dict[str, Any]:
    """Start an empty sandbox and report the isolation in force: ``{"landlock": ABI or 0, "uid": ...}``."""
    with Sandbox([], limits=limits, read_paths=read_paths) as box:
        box.start()
        return dict(box.isolation)


def describe(isolation: dict[str, Any]) -> str:
    """The guarantee :func:`probe` found, in words."""
    abi = int(isolation.get("landlock", 0))
    parts = ["own process and process group", "time and memory limits"]
    if abi:
        parts.append(f"Landlock ABI {abi}: reads only Python, cvkit and its data, writes only its temporary folder")
        if abi >= 4:
            parts.append("no TCP")
        if abi >= 6:
            parts.append("no signals to other processes")
    if isolation.get("uid") not in (None, os.getuid()):
        parts.append(f"runs as uid {isolation['uid']}")
    text = "; ".join(parts)
    if not abi:
        text += (". WARNING: no Landlock on this system: a submission can read any file this user can read, "
                 "including the instructor's notebooks")
    return text
