"""Exact checkpoint files for a babysat run: written off the training thread, kept by retention rules.

A checkpoint is the trainable's exact state (tensors nested in dicts and lists, plus plain values: what
``save()`` returns, or ``state_split()`` gives without copies), wrapped with the run's own bookkeeping
(epoch, branch, current params). Files are in the safetensors format: tensors stored raw, everything else
as JSON in the header, so loading a checkpoint never runs code and a digits-MLP checkpoint loads in well
under a millisecond. A state with values JSON cannot hold (tuples, numpy arrays, objects) falls back to
``torch.save``, whose loading unpickles (trust your own artifact folder). Every file is written to a
temporary name and renamed, so a kill -9 leaves either the whole file or none.

>>> import torch, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "epoch-0001.ckpt"
>>> write_state({"epoch": 1, "weights": {"W1": torch.ones(2, 3)}}, path)
>>> read_state(path)["weights"]["W1"].shape
torch.Size([2, 3])
"""
from __future__ import annotations

import errno
import json
import marshal
import math
import mmap
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sturgeon.panda._copier import CONTROL as _CONTROL
from sturgeon.panda._copier import frame, header
from sturgeon.train import TENSOR_REF

__all__ = ["write_state", "read_state", "split_of", "keep_reserve", "drop_reserve",
           "Retention", "CheckpointWriter", "CheckpointWriteError", "Checkpoint",
           "list_checkpoints", "checkpoint_path", "split_state"]

_MAX_DEATHS = 3  # copiers that may die in a row on one job before the write counts as failed
PathLike = str | os.PathLike[str]  # where a checkpoint goes: a plain string costs least at each epoch
_MAGIC_TORCH = b"PK\x03\x04"  # torch.save's zip container; a safetensors file starts with its header's length


class CheckpointWriteError(RuntimeError):
    """A checkpoint file could not be written: ``path`` names it, ``disk_full`` is true when the disk (or the
    filesystem's quota) is full. Nothing is left under its name, nor under its temporary one.

    >>> import errno
    >>> str(write_failure("/runs/r/branch-0/epoch-00012.ckpt", errno.ENOSPC, "No space left on device"))
    "Cannot write the checkpoint '/runs/r/branch-0/epoch-00012.ckpt': the disk is full (No space left on device)."
    """

    def __init__(self, message: str, *, path: str = "", disk_full: bool = False) -> None:
        super().__init__(message)
        self.path, self.disk_full = path, disk_full


def write_failure(path: PathLike, code: int | None, message: str) -> CheckpointWriteError:
    """The error for a failed write of ``path`` (``code``: the errno, if the system gave one)."""
    where = os.fsdecode(path)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return CheckpointWriteError(f"Cannot write the checkpoint '{where}': the disk is full ({os.strerror(code)}).",
                                    path=where, disk_full=True)
    return CheckpointWriteError(f"Cannot write the checkpoint '{where}': {message}.", path=where)


def split_state(state: Any) -> tuple[Any, list[torch.Tensor]] | None:
    """The JSON skeleton of ``state``, with ``{TENSOR_REF: "t<i>"}`` in place of its i-th tensor, and the
    tensors; None when JSON cannot hold one of its values (tuples, numpy arrays, objects, int keys).

    >>> split_state({"w": torch.zeros(2), "epoch": 3})
    ({'w': {'__tensor__': 't0'}, 'epoch': 3}, [tensor([0., 0.])])
    """
    tensors: list[torch.Tensor] = []

    def walk(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors.append(obj.detach())
            return {TENSOR_REF: f"t{len(tensors) - 1}"}
        if isinstance(obj, dict):
            if not all(isinstance(k, str) for k in obj) or TENSOR_REF in obj:
                raise TypeError("a key JSON cannot hold, or our marker")
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(type(obj).__name__)

    try:
        return walk(state), tensors
    except TypeError:
        return None


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {TENSOR_REF}:
            return tensors[obj[TENSOR_REF]]
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


# torch dtype -> the safetensors format's dtype name
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}


@dataclass(frozen=True)
class _Layout:
    """Where a state's tensors go in the file: the same from epoch to epoch, so it is worked out once."""

    key: tuple[tuple[torch.dtype, torch.Size], ...]  # each tensor's dtype and shape, in the state's order
    order: tuple[int, ...]  # file order, as indices into the tensors: largest element size first, so each
    #                         dtype's run stays aligned in a memory map
    offsets: tuple[int, ...]  # each one's byte offset in the data part, in file order
    table: bytes  # the header's entries for them: JSON, without the braces
    size: int  # bytes of tensor data


_LAYOUTS: dict[tuple[Any, ...], _Layout | None] = {}  # (dtype, shape) of each tensor -> its layout


def _layout(tensors: list[torch.Tensor]) -> _Layout | None:
    """The layout of these tensors; None when the format has no name for one's dtype."""
    key = tuple([(t.dtype, t.shape) for t in tensors])
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    layout = None
    if all(dtype in _DTYPES for dtype, _ in key):
        order = tuple(sorted(range(len(key)), key=lambda i: -key[i][0].itemsize))  # stable within a dtype
        entries, offsets, start = {}, [], 0
        for i in order:
            dtype, shape = key[i]
            end = start + math.prod(shape) * dtype.itemsize
            entries[f"t{i}"] = {"dtype": _DTYPES[dtype], "shape": list(shape), "data_offsets": [start, end]}
            offsets.append(start)
            start = end
        layout = _Layout(key, order, tuple(offsets), json.dumps(entries)[1:-1].encode(), start)
    if len(_LAYOUTS) >= 64:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    _LAYOUTS[key] = layout
    return layout


def write_state(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, then rename); the safetensors library reads
    it back. A state JSON cannot hold is written with ``torch.save`` instead. A write the disk refuses raises
    :class:`CheckpointWriteError` and leaves neither file."""
    split = split_state(state)
    _write_split(split if split is not None and _layout(split[1]) is not None else (state, None), path)


def _write_split(split: tuple[Any, list[torch.Tensor] | None], path: Path) -> None:
    """Write a split state (or, with no tensor list, a state for ``torch.save``) atomically."""
    skeleton, tensors = split
    tmp = path.with_name(path.name + ".tmp")
    layout = None if tensors is None else _layout(tensors)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if layout is None:  # keep it exact with torch.save
            torch.save(skeleton if tensors is None else _join(skeleton, {f"t{i}": t for i, t in enumerate(tensors)}),
                       tmp)
        else:
            raw = (tensors[i].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()  # type: ignore[index]
                   for i in layout.order)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                write_all(fd, [header(json.dumps(skeleton).encode(), layout.table), *raw])
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # a half file is of no use, and on a full disk it holds the space to stop in
        if isinstance(e, OSError):
            raise write_failure(path, e.errno, e.strerror or str(e)) from None
        if isinstance(e, RuntimeError) and not isinstance(e, CheckpointWriteError) and _disk_full(path):
            raise write_failure(path, errno.ENOSPC, str(e)) from None  # torch.save says only "failed writing"
        raise


def _disk_full(path: Path) -> bool:
    """Whether the filesystem of ``path``'s folder has no room left for an ordinary user's file."""
    try:
        st = os.statvfs(path.parent if path.parent.exists() else path.parent.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 16


def _absolute(path: PathLike) -> bytes:
    """The path as the copier needs it: bytes, and absolute (it keeps the working folder it started in)."""
    p = os.fsencode(path)
    return p if os.path.isabs(p) else os.path.abspath(p)


def write_all(fd: int, parts: list[Any]) -> None:
    """Write every buffer of ``parts`` to ``fd`` with writev (a short write continues where it stopped)."""
    views = [v for v in (memoryview(p).cast("B") for p in parts) if v.nbytes]
    while views:
        n = os.writev(fd, views[:1024])  # at most IOV_MAX buffers per call
        while n and views:
            if n >= views[0].nbytes:
                n -= views.pop(0).nbytes
            else:
                views[0], n = views[0][n:], 0


def read_state(path: Path) -> dict[str, Any]:
    """Read a file written by :func:`write_state`."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _MAGIC_TORCH:
        return torch.load(path, weights_only=False)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        skeleton = json.loads(f.metadata()["state"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return _join(skeleton, tensors)


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint file of branch ``trial`` taken after epoch ``step``; ``path`` is relative to the run's
    artifact folder."""

    trial: int
    step: int
    path: str


def checkpoint_path(branch: int, epoch: int) -> str:
    return f"branch-{branch}/epoch-{epoch:05d}.ckpt"


def list_checkpoints(artifacts: Path) -> list[Checkpoint]:
    """The complete checkpoint files of a run, by branch then epoch. The folder is the index: a file exists
    under its final name only once whole, and retention deletes files, so nothing can disagree with it."""
    found = []
    for f in artifacts.glob("branch-*/epoch-*.ckpt"):
        try:
            found.append(Checkpoint(int(f.parent.name[7:]), int(f.stem[6:]), f"{f.parent.name}/{f.name}"))
        except ValueError:
            continue  # not one of ours
    return sorted(found, key=lambda c: (c.trial, c.step))


@dataclass(frozen=True)
class Retention:
    """Which epochs' checkpoints a branch keeps: the last ``keep_last``, every ``keep_every``-th, epoch 0,
    and any epoch another branch was forked from (``protected``).

    >>> sorted(Retention(keep_last=2, keep_every=5).keep([0, 1, 2, 3, 4, 5, 6, 7], protected={3}))
    [0, 3, 5, 6, 7]
    """

    keep_last: int = 3
    keep_every: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) or self.keep_last < 1:
            raise ValueError(f"The 'keep_last' parameter must be an integer >= 1. Got {self.keep_last!r} instead.")
        if isinstance(self.keep_every, bool) or not isinstance(self.keep_every, int) or self.keep_every < 0:
            raise ValueError(f"The 'keep_every' parameter must be an integer >= 0 (0: none). Got {self.keep_every!r} "
                             "instead.")

    def keep(self, steps: Iterable[int], protected: Iterable[int] = ()) -> set[int]:
        ordered = sorted(set(steps))
        kept = set(ordered[-self.keep_last:]) | set(protected) & set(ordered)
        kept |= {s for s in ordered if s == 0 or (self.keep_every and s % self.keep_every == 0)}
        return kept



class CheckpointWriter:
    """Writes checkpoints without making training wait for the disk, or for Python's GIL.

    ``submit`` puts the state (already copied by ``Trainable.save()``, or the live tensors of a trainable's
    ``state_split()``, copied here) into a staging file in RAM (``/dev/shm``, memory-mapped) and sends
    one record to a helper process (``_copier.py``, standard library only) that copies the bytes to their
    place on disk and renames the file, on the other core. A background *thread* would not do: its Python
    work and syscalls hold the GIL the training loop needs (measured: +8 % epoch time on the digits MLP).
    The copier counts finished and failed jobs in the staging file's head, so waiting for the previous copy
    is a memory read, not a syscall. It finishes a job it has received even when the training process is
    killed, so a kill -9 loses at most the epoch in progress; a file is complete once it has its final name.
    One copy at most is under way: ``submit`` and ``flush`` wait for the previous one and raise its error.
    A copier that dies (killed, out of memory) is replaced, and a job it had not finished is sent again to
    the new one: the staging file still holds its bytes, since nothing is staged before the job is done.
    Without ``/dev/shm`` the file is written directly, synchronously.

    Each tensor has a fixed place in the staging file from epoch to epoch, so an epoch's copy is one
    ``torch._foreach_copy_`` into views made once. The copier is told the tensor table once per layout and
    builds each file's header itself from the state's skeleton, sent with the job.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._sent = 0  # jobs handed to the current copier
        self._failed = 0  # its failures already raised
        shm = Path("/dev/shm")
        ram = shm.is_dir() and os.access(shm, os.W_OK)
        self._stage = shm / f"sturgeon-{os.getpid()}-{id(self)}.stage" if ram else None
        self._map: mmap.mmap | None = None
        self._buffer: torch.Tensor | None = None  # the mapped staging file's data part, as bytes
        self._views: tuple[Any, ...] = (None, None, [])  # (layout, buffer, the tensors' places in it)
        self._told: _Layout | None = None  # the layout whose table the copier has
        # the write under way (record, layout, file), sent again to a new copier if its copier dies
        self._job: tuple[bytes, _Layout, str] | None = None
        self._deaths = 0  # copiers that died in a row before finishing a job

    def _copier(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            script = Path(__file__).with_name("_copier.py")
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", str(script), str(self._stage)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
            self._sent = self._failed = 0
            self._told = None
            if self._map is not None:
                self._map[:_CONTROL] = bytes(_CONTROL)
        return self._proc

    def _send(self, record: bytes, layout: _Layout | None = None) -> None:
        """Send one framed record, after the layout's tensor table if the copier lacks it: both in one write,
        so that a copier started here (the last one died) gets the table before the job that needs it. A
        copier found dead on the way is replaced, and the new one gets the whole record."""
        while True:
            proc = self._copier()
            told = self._told
            message = record if layout is None or told is layout else frame(b"layout", layout.table) + record
            rest = memoryview(message)
            try:
                while rest:  # a signal can cut a write to a full pipe short: write what is left
                    rest = rest[proc.stdin.write(rest):]  # type: ignore[union-attr]
            except BrokenPipeError:
                self._buried(proc)
                continue
            if layout is not None:
                self._told = layout
            return

    def _buried(self, proc: subprocess.Popen[bytes]) -> None:
        """A copier died before finishing its work: the next record starts a new one, unless they keep dying."""
        proc.kill()  # already dead, or past saving: its pipe is closed
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass
        self._proc = None
        self._deaths += 1
        if self._deaths > _MAX_DEATHS:
            where = f"the checkpoint '{self._job[2]}'" if self._job is not None else "checkpoints"
            self._job, self._deaths = None, 0
            raise CheckpointWriteError(f"Cannot write {where}: the copier process died {_MAX_DEATHS + 1} times in a "
                                       f"row (last exit code {proc.returncode}).")

    def _staging(self, size: int) -> torch.Tensor:
        """The staging file's data part, mapped as a uint8 tensor of at least ``size`` bytes (a larger state
        maps a new file, of twice the size, for a new copier)."""
        if self._buffer is None or self._buffer.numel() < size:
            self._stop_copier()
            self._release_map()
            capacity = max(size, 2 * (0 if self._buffer is None else self._buffer.numel()), 1 << 20) + _CONTROL
            fd = os.open(self._stage, os.O_RDWR | os.O_CREAT, 0o600)  # type: ignore[arg-type]
            try:
                os.ftruncate(fd, capacity)
                # Reserve the pages now: a full /dev/shm must be an OSError here, not a SIGBUS while copying.
                os.posix_fallocate(fd, 0, capacity)
                self._map = mmap.mmap(fd, capacity)
            except OSError:
                self._stage.unlink(missing_ok=True)  # type: ignore[union-attr]
                self._stage = None  # no RAM staging for this writer from now on: files are written directly
                raise
            finally:
                os.close(fd)
            self._buffer = torch.frombuffer(self._map, dtype=torch.uint8, offset=_CONTROL)
        return self._buffer

    def _release_map(self) -> None:
        self._buffer, self._views = None, (None, None, [])  # no view may outlive the map
        if self._map is not None:
            self._map.close()
            self._map = None

    def _stop_copier(self) -> None:
        self.flush()
        if self._proc is not None:
            self._proc.stdin.close()  # type: ignore[union-attr]  # it deletes the staging file as it ends
            self._proc.wait()
            self._proc = None

    def submit(self, state: dict[str, Any], path: PathLike, remove: Sequence[PathLike] | None = None) -> None:
        """Write ``state`` to ``path``; it is there (whole) by the next ``submit``/``flush``. ``remove``:
        files to delete once it is written (retention, in the same job)."""
        split = split_state(state)
        if split is None or _layout(split[1]) is None:  # torch.save it, as it is, directly
            self.flush()
            _write_split((state, None), Path(path))
            self._unlink(remove)
        else:
            self.submit_split(*split, path, remove)

    def submit_split(self, skeleton: Any, tensors: list[torch.Tensor], path: PathLike,
                     remove: Sequence[PathLike] | None = None) -> None:
        """:meth:`submit` for a state already split (as :func:`split_state` or ``state_split()`` do): the
        tensors are copied before this returns, so they may be the trainable's live ones."""
        self.flush()
        layout = _layout(tensors)
        if layout is not None and self._stage is not None:
            try:
                buf = self._staging(layout.size)
            except OSError:  # RAM staging full: write directly from now on
                self._release_map()
            else:
                with torch.no_grad():  # 1) every tensor to its place: one call, no Python loop
                    if tensors:
                        torch._foreach_copy_(self._places(layout, buf), [tensors[i] for i in layout.order])
                try:  # 2) the copier builds the header from the table (sent once per layout) and the
                    fmt, state = b"marshal", marshal.dumps(skeleton)  # skeleton, marshalled: several times
                except ValueError:  # faster than JSON; a subclass marshal refuses (an IntEnum) goes as JSON
                    fmt, state = b"json", json.dumps(skeleton).encode()
                record = frame(b"write", b"%d" % layout.size, _absolute(path), fmt, state,
                               *map(_absolute, remove or ()))
                self._job = (record, layout, os.fsdecode(_absolute(path)))
                self._send(record, layout)
                self._sent += 1
                return
        _write_split((skeleton, tensors), Path(path))
        self._unlink(remove)

    def _places(self, layout: _Layout, buf: torch.Tensor) -> list[torch.Tensor]:
        """Views of the staging buffer where the layout's tensors go, in file order; made once per layout."""
        cached_layout, cached_buf, views = self._views
        if cached_layout is not layout or cached_buf is not buf:
            views = []
            for i, at in zip(layout.order, layout.offsets, strict=True):
                dtype, shape = layout.key[i]
                views.append(buf[at : at + math.prod(shape) * dtype.itemsize].view(dtype).view(shape))
            self._views = (layout, buf, views)
        return views

    @staticmethod
    def _unlink(paths: Sequence[PathLike] | None) -> None:
        for p in paths or ():
            Path(p).unlink(missing_ok=True)

    def remove(self, paths: Sequence[PathLike]) -> None:
        """Delete files (retention), in order after the writes submitted before."""
        if not paths:
            return
        if self._map is None:  # nothing staged yet (or no RAM staging): no copier to keep the order with
            self._unlink(paths)
        else:
            self._send(frame(b"unlink", *map(_absolute, paths)))

    def flush(self) -> None:
        """Wait until the last submitted file is complete; raise if it could not be written."""
        if self._proc is None or self._map is None:
            return
        while int.from_bytes(self._map[0:8], "little") < self._sent:  # a memory read: no syscall
            if self._proc.poll() is not None:  # died before finishing the job: a new copier does it again
                self._buried(self._proc)
                if self._job is None:  # nothing of ours left to redo
                    self._sent = 0
                    break
                self._send(*self._job[:2])
                self._sent = 1
                continue
            time.sleep(0.0002)
        self._job, self._deaths = None, 0
        if self._proc is not None and int.from_bytes(self._map[8:16], "little") > self._failed:
            self._failed += 1
            line = self._proc.stdout.readline().decode(errors="replace").strip()  # type: ignore[union-attr]
            try:
                why = json.loads(line.removeprefix("error: "))
                failure = write_failure(why["path"], why["errno"], why["message"])
            except (ValueError, KeyError, TypeError):  # not the copier's record: say what it said
                failure = CheckpointWriteError(f"Cannot write a checkpoint: {line.removeprefix('error: ')}.")
            raise failure

    def close(self) -> None:
        try:
            self._stop_copier()
        finally:
            self._release_map()
            if self._stage is not None:
                self._stage.unlink(missing_ok=True)


def split_of(trainable: Any) -> Callable[[], tuple[Any, list[Any]]] | None:
    """The trainable's ``state_split`` when it stands for its ``save()``: defined by the class that defines
    ``save`` or by a subclass of it. A subclass of the built-in trainer that adds state by overriding
    ``save()`` alone inherits a ``state_split`` that knows nothing of that state: its ``save()`` is used.

    >>> from sturgeon.train import Trainer
    >>> class Extra(Trainer):
    ...     def save(self): return {**super().save(), "note": 1}
    >>> split_of(Extra.__new__(Extra)) is None, split_of(Trainer.__new__(Trainer)) is not None
    (True, True)
    """
    split = getattr(trainable, "state_split", None)
    if not callable(split):
        return None
    mro = type(trainable).__mro__
    owner = {name: next((c for c in mro if name in c.__dict__), None) for name in ("state_split", "save")}
    if owner["save"] is not None and owner["state_split"] is not None and \
            not issubclass(owner["state_split"], owner["save"]):
        return None
    return split


def keep_reserve(path: Path, size: int) -> None:
    """Hold ``size`` bytes of real blocks in ``path`` (a sparse file would give nothing back): when the disk
    fills up, ``drop_reserve`` gives them back, so that a run can still record why it stopped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
    except OSError:  # a disk already full, or a filesystem without fallocate: no reserve, no harm
        drop_reserve(path)


def drop_reserve(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
