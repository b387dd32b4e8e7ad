"""The checkpoint copier: a helper process of :class:`~sturgeon.panda.checkpoints.CheckpointWriter`.

``python _copier.py STAGING_FILE`` reads records on stdin, each a list of fields, each field a 4-byte
little-endian length and its bytes:

- ``layout TABLE``: the safetensors tensor table (JSON entries, without the braces) of the files to come;
- ``write SIZE DST FORMAT STATE [GONE ...]``: the file ``DST``: the header, built here from ``STATE`` (the
  state's skeleton: ``json`` text, or ``marshal`` bytes) and the table, then ``SIZE`` bytes of the staging
  file (in RAM) after its 64-byte head; written through a temporary name and a rename, then the ``GONE``
  files are deleted (retention). Each write is counted in the head: bytes 0-8 jobs done, 8-16 jobs failed
  (each failure also one line on stdout: ``error: {"path": DST, "errno": N or null, "message": why}``; a
  failed write leaves no temporary file behind);
- ``unlink PATH ...``: delete files (retention).

Building the header here keeps the training process's share of an epoch boundary small: ``marshal`` of
the skeleton (C, binary floats) takes about a fifth of the time of encoding it as JSON there, and this
process, on the other core, does the JSON. Both processes run the same interpreter, which marshal needs.
Standard library only, so it starts in milliseconds; the writer imports :func:`header` from here too, so
both ways of writing a file make the same bytes. It ends when its stdin
closes (its parent exited or died), deleting the staging file, and ignores Ctrl-C, which its parent handles.
"""
from __future__ import annotations

import json
import marshal
import mmap
import os
import signal
import sys
from collections.abc import Iterator
from typing import BinaryIO

CONTROL = 64


def header(state: bytes, table: bytes) -> bytes:
    """The framed safetensors header: its length in 8 bytes, then the JSON header — the state skeleton as the
    one metadata string, then the tensor table — padded with spaces to 8 bytes, so the data stays aligned."""
    head = b'{"__metadata__": {"state": ' + json.dumps(state.decode()).encode() + b"}"
    head += (b", " + table if table else b"") + b"}"
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head


def frame(*fields: bytes) -> bytes:
    """One record for the copier's stdin: the field count, then each field's length and bytes."""
    return b"".join([len(fields).to_bytes(4, "little"), *(len(f).to_bytes(4, "little") + f for f in fields)])


def records(stream: BinaryIO) -> Iterator[list[bytes]]:
    def exactly(n: int) -> bytes:
        got = stream.read(n)
        if len(got) < n:
            raise EOFError  # the parent exited, or died mid-record: nothing whole is left to do
        return got

    try:
        while True:
            count = int.from_bytes(exactly(4), "little")
            yield [exactly(int.from_bytes(exactly(4), "little")) for _ in range(count)]
    except EOFError:
        return


def skeleton_json(fmt: bytes, state: bytes) -> bytes:
    return json.dumps(marshal.loads(state)).encode() if fmt == b"marshal" else state


def _unlink(paths: list[bytes]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass  # retention only: a file that cannot go (already gone, a folder, no permission) stays


def write(dst: bytes, state: bytes, table: bytes, staging: int, size: int) -> None:
    """One checkpoint file, whole under its final name or not there at all."""
    folder = os.path.dirname(dst)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = dst + b".tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(header(state, table))
            out.flush()
            copied = 0
            while copied < size:  # sendfile: the kernel copies page cache to page cache
                copied += os.sendfile(out.fileno(), staging, CONTROL + copied, size - copied)
        os.replace(tmp, dst)
    except BaseException:
        _unlink([tmp])  # a half file is of no use, and on a full disk it holds the space the run needs to stop
        raise


def main(staging: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    done = failed = 0
    table = b""
    fd = os.open(staging, os.O_RDWR)
    head = mmap.mmap(fd, CONTROL)
    for op, *args in records(sys.stdin.buffer):
        if op == b"layout":
            table = args[0]
        elif op == b"unlink":
            _unlink(args)
        else:
            try:
                write(args[1], skeleton_json(args[2], args[3]), table, fd, int(args[0]))
                _unlink(args[4:])  # older files go once the new one is whole
            except Exception as e:  # noqa: BLE001 - the disk, or a skeleton JSON cannot hold: the job failed,
                failed += 1  # the copier lives on for the next
                why = {"path": os.fsdecode(args[1]), "errno": getattr(e, "errno", None), "message": str(e)}
                sys.stdout.write(f"error: {json.dumps(why)}\n")
                sys.stdout.flush()
                head[8:16] = failed.to_bytes(8, "little")
            done += 1
            head[0:8] = done.to_bytes(8, "little")  # last: the parent may reuse the staging file from now on
    # stdin closed: the parent is done with this copier (or dead). A copier killed before this point leaves
    # the staging file for the next copier of a live parent.
    try:
        os.unlink(staging)
    except OSError:
        pass


if __name__ == "__main__":
    main(sys.argv[1])
