"""The checkpoint copier: a helper process of :class:`~sturgeon.panda.checkpoints.CheckpointWriter`.

``python _copier.py STAGING_FILE`` reads one JSON job per line on stdin. ``write``: copy the first ``size``
bytes of the staging file (in RAM) to ``dst`` through a temporary name and a rename, then answer one JSON
line (``ok`` or ``error: why``). ``unlink``: delete ``paths`` (retention), no answer. Standard
library only, so it starts in milliseconds. It ends when its stdin closes (its parent exited or died),
deleting the staging file, and ignores Ctrl-C, which its parent handles.
"""
import json
import os
import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_IGN)
staging = sys.argv[1]
try:
    for line in sys.stdin.buffer:
        job = json.loads(line)
        if job["op"] == "unlink":
            for path in job["paths"]:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            continue
        dst = job["dst"]
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(staging, "rb") as src, open(dst + ".tmp", "wb") as out:
                done, size = 0, job["size"]
                while done < size:  # sendfile: the kernel copies page cache to page cache
                    done += os.sendfile(out.fileno(), src.fileno(), done, size - done)
            os.replace(dst + ".tmp", dst)
            reply = "ok"
        except OSError as e:
            reply = f"error: {e}"
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()
finally:
    try:
        os.unlink(staging)
    except OSError:
        pass
