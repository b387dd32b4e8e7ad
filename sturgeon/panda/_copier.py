"""The checkpoint copier: a helper process of :class:`~sturgeon.panda.checkpoints.CheckpointWriter`.

``python _copier.py STAGING_FILE`` reads one JSON job per line on stdin. ``write``: copy ``size`` bytes of
the staging file (in RAM), after its 64-byte head, to ``dst`` through a temporary name and a rename, then
delete the files listed in ``unlink``, count the job in the head (bytes 0-8: jobs done; 8-16: jobs failed, each failure also one line
``error: why`` on stdout). ``unlink``: delete ``paths`` (retention). Standard library only, so it starts in
milliseconds. It ends when its stdin closes (its parent exited or died), deleting the staging file, and
ignores Ctrl-C, which its parent handles.
"""
import json
import mmap
import os
import signal
import sys

CONTROL = 64


def main(staging: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    done = failed = 0
    try:
        fd = os.open(staging, os.O_RDWR)
        head = mmap.mmap(fd, CONTROL)
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
                with open(dst + ".tmp", "wb") as out:
                    copied, size = 0, job["size"]
                    while copied < size:  # sendfile: the kernel copies page cache to page cache
                        copied += os.sendfile(out.fileno(), fd, CONTROL + copied, size - copied)
                os.replace(dst + ".tmp", dst)
                for path in job.get("unlink", ()):  # retention: older files go once the new one is whole
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
            except OSError as e:
                failed += 1
                sys.stdout.write(f"error: {e}\n")
                sys.stdout.flush()
                head[8:16] = failed.to_bytes(8, "little")
            done += 1
            head[0:8] = done.to_bytes(8, "little")  # last: the parent may reuse the staging file from now on
    finally:
        try:
            os.unlink(staging)
        except OSError:
            pass


if __name__ == "__main__":
    main(sys.argv[1])
