"""The untrusted side of grading: one student's notebook runs here, in a process of its own.

:mod:`cvkit.grading.sandbox` starts this file as a script (``python -I _worker.py CMD_FD RESULT_FD``), sends
it the notebook's code cells and the limits, and from then on only asks it to look names up and to call
the student's functions. This file imports nothing from cvkit (it starts in a fraction of a second and
never holds the grader's code or data), and locks itself in before the first line of student code runs:

- resource limits: address space (memory), size of any file written, no core dumps;
- Landlock (Linux 5.13 and later): the process may read only the Python installation and the cvkit
  package, and write only inside its working folder; with Landlock ABI 4 and later it cannot open TCP
  connections, with ABI 6 and later it cannot signal processes outside its sandbox;
- when started as root: it switches to the ``nobody`` user, so it cannot touch files owned by others.

Everything it sends back is data in a format the grader decodes without running code (JSON plus the raw
bytes of arrays), never pickles, so a hostile notebook can at worst send a wrong answer.
"""
from __future__ import annotations

import ctypes
import json
import os
import pickle
import resource
import struct
import sys
import traceback

HEADER = struct.Struct(">Q")       # every frame starts with its length
MAX_DEPTH = 16                     # nesting of lists/tuples/dicts in a result

# Landlock, from <linux/landlock.h>; the syscall numbers are the same on x86-64 and arm64.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ALL_ABI1 = (1 << 13) - 1       # execute ... make_sym: the 13 rights of ABI 1
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_PR_SET_NO_NEW_PRIVS = 38


def read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the grader closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(fd: int, header: dict, blob: bytes = b"") -> None:
    """One frame: total length, header length, JSON header, raw bytes (the arrays the header points into)."""
    head = json.dumps(header).encode()
    payload = struct.pack(">I", len(head)) + head + blob
    data = memoryview(HEADER.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int) -> object:
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    return pickle.loads(read_exact(fd, size))        # written by the grader, the trusted side


# --- locking the process in --------------------------------------------------------------------

def landlock(read_paths: list[str], write_paths: list[str]) -> int:
    """Restrict this process and its children to reading ``read_paths`` and writing ``write_paths``.

    Returns the Landlock ABI version in force, or 0 where the kernel has no Landlock (nothing restricted).
    """
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi < 1:
        return 0
    handled_fs = _FS_ALL_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = struct.pack("<QQQ", handled_fs, (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
                       (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0)
    attr = attr[: 8 if abi < 4 else 16 if abi < 6 else 24]          # the struct grew with the ABI
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    file_rights = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    rules = [(p, read) for p in read_paths] + [(p, handled_fs) for p in write_paths]
    rules.append(("/dev/null", _FS_READ_FILE | _FS_WRITE_FILE))
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue                                              # a path that does not exist here
            if not os.path.isdir(path):
                rights &= file_rights                                 # a file takes only file rights
            rule = struct.pack("<Qi", rights, fd)                     # landlock_path_beneath_attr, packed
            done = libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.c_char_p(rule), ctypes.c_uint32(0))
            os.close(fd)
            if done < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return int(abi)


def limit_resources(memory_bytes: int, file_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_to(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (256, 256))             # per user: no fork bomb as nobody


# --- results as data ----------------------------------------------------------------------------

class Unreadable(Exception):
    """The student's function returned something that is not data the grader reads."""


def encode(value: object, blobs: list[bytes], depth: int = 0) -> object:
    """``value`` as JSON-ready data; array bytes go to ``blobs`` (the header holds offsets into them)."""
    if depth > MAX_DEPTH:
        raise Unreadable(f"the result is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return {"t": "atom", "v": value}
    if isinstance(value, int):
        return {"t": "int", "v": str(int(value))}                     # JSON numbers would lose big ints
    if isinstance(value, float):
        return {"t": "float", "v": float(value)}
    torch = sys.modules.get("torch")
    numpy = sys.modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        blobs.append(raw)
        return {"t": "tensor", "dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape),
                "blob": len(blobs) - 1}
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            raise Unreadable("the result is a NumPy array of Python objects")
        array = numpy.ascontiguousarray(value)
        blobs.append(array.tobytes())
        return {"t": "ndarray", "dtype": array.dtype.str, "shape": list(array.shape), "blob": len(blobs) - 1}
    if numpy is not None and isinstance(value, numpy.generic):
        return encode(value.item(), blobs, depth + 1)
    if isinstance(value, (list, tuple)):
        return {"t": type(value).__name__ if type(value) in (list, tuple) else "list",
                "v": [encode(v, blobs, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[encode(k, blobs, depth + 1), encode(v, blobs, depth + 1)]
                                   for k, v in value.items()]}
    raise Unreadable(f"your function returned {type(value).__name__}; the grader reads tensors, arrays, numbers, "
                     f"strings, None and lists, tuples or dicts of them")


def _error(err: BaseException) -> dict:
    """An exception raised by student code, as data: type name, message, line."""
    frames = traceback.extract_tb(err.__traceback__)
    try:
        message = str(err)[:2000]
    except Exception:                                   # a hostile __str__
        message = "(the message could not be read)"
    return {"ok": False, "type": type(err).__name__[:80], "message": message,
            "lineno": frames[-1].lineno if frames else 0}


def _answer(value: object, limit: int) -> tuple[dict, bytes]:
    blobs: list[bytes] = []
    try:
        data = encode(value, blobs)
    except Unreadable as err:
        return {"ok": False, "type": "UnreadableResult", "message": str(err), "lineno": 0}, b""
    except Exception as err:
        return {"ok": False, "type": "UnreadableResult",
                "message": f"the grader could not read your result ({type(err).__name__}: {err})"[:2000],
                "lineno": 0}, b""
    offsets, total = [], 0
    for blob in blobs:
        offsets.append([total, len(blob)])
        total += len(blob)
    if total > limit:
        return {"ok": False, "type": "ResultTooLarge",
                "message": f"your result holds {total / 2**20:.1f} MB of arrays, more than the "
                           f"{limit / 2**20:.0f} MB the grader reads", "lineno": 0}, b""
    return {"ok": True, "value": data, "blobs": offsets}, b"".join(blobs)


def _make_shell():
    from IPython.core.interactiveshell import InteractiveShell

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):                 # `%matplotlib inline` without a front end
            return None

    return Shell.instance()


def main(cmd_fd: int, result_fd: int) -> None:
    init = receive(cmd_fd)
    os.chdir(init["workdir"])
    limit_resources(init["memory_bytes"], init["file_bytes"])
    abi = landlock(init["read_paths"], [init["workdir"]]) if init["landlock"] else 0
    if init.get("uid") is not None and os.getuid() == 0:
        drop_to(init["uid"], init["gid"])
    send(result_fd, {"event": "sandbox", "landlock": abi, "uid": os.getuid()})
    sys.path.insert(0, init["workdir"])                # as a kernel started in the student's folder
    shell = _make_shell()
    errors = []
    for index, source in init["cells"]:
        send(result_fd, {"event": "cell", "index": index})
        result = shell.run_cell(source, store_history=True)
        err = result.error_before_exec or result.error_in_exec
        if err is not None:
            errors.append([index, _error(err)])
    send(result_fd, {"event": "ready", "errors": errors})
    namespace = shell.user_ns
    while True:
        request = receive(cmd_fd)
        rid = request["id"]
        if request["op"] == "lookup":
            found = {}
            for name in request["names"]:
                if name not in namespace:
                    found[name] = {"kind": "missing"}
                elif type(namespace[name]).__name__ == "module":
                    found[name] = {"kind": "module", "name": getattr(namespace[name], "__name__", "?")}
                elif callable(namespace[name]):
                    found[name] = {"kind": "function"}
                else:
                    found[name] = {"kind": "data", "type": type(namespace[name]).__name__[:80]}
            send(result_fd, {"id": rid, "found": found})
        elif request["op"] in ("call", "get"):
            try:
                value = namespace[request["name"]]
                if request["op"] == "call":
                    value = value(*request["args"], **request["kwargs"])
            except BaseException as err:                  # SystemExit and KeyboardInterrupt too
                send(result_fd, {"id": rid, **_error(err)})
                continue
            header, blob = _answer(value, request["limit"])
            send(result_fd, {"id": rid, **header}, blob)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
