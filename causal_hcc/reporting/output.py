"""Output directories written atomically, one run at a time.

A run never writes into its ``--out`` directory directly. :class:`OutputDir` stages every
file in a temporary directory beside the target (same parent, so the move is a rename on
one file system) and, when the run has finished, swaps the staged directory into place in
one step. A killed or failed run therefore leaves the previous complete run exactly as it
was; at worst a hidden ``.NAME.partial-*`` directory and a stale ``NAME.lock`` stay
behind, and the next run removes them.

Rules
-----
- **The whole directory is replaced.** ``DIR`` holds the files of exactly one run, listed
  with their SHA-256 in ``manifest.json``. Files of an earlier causal-hcc run (those its
  manifest lists) are replaced with the directory; a directory holding anything else (no
  manifest, or files the manifest does not list) is refused, so user files are never
  deleted.
- **One run at a time.** ``NAME.lock`` beside the target is created with ``O_EXCL`` and
  holds the writer's pid; a second run fails with "another causal-hcc run is writing to
  DIR (pid N)". A lock whose pid is no longer alive is stale and taken over.
- **Inputs are never overwritten.** An input file (data, mapping, config, claims) inside
  ``DIR`` (or equal to it) is refused before anything runs.
- Unwritable locations are refused up front with the directory named.

Every refusal is an :class:`OutputError` (a ``CohortError``: the CLI exits 2).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from causal_hcc.errors import CohortError

MANIFEST = "manifest.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputError(CohortError):
    """The output cannot be written where asked (the message names the path)."""

    def __init__(self, problem: str):
        super().__init__([problem], header="Output not written:")

    def __reduce__(self):
        return type(self), self.problems


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() or p.is_symlink())


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def check_inputs(target: str | Path, inputs: dict) -> None:
    """Refuse when an input file (``{option: path}``) is or lies inside ``target``."""
    target = Path(target).resolve()
    for option, path in inputs.items():
        if not path:
            continue
        resolved = Path(path).resolve()
        if resolved == target or target in resolved.parents:
            raise OutputError(
                f"--out {target} would overwrite the input file {resolved} ({option}): a run "
                "replaces the whole output directory. Choose an --out directory that holds "
                "no input file.")


def check_writable(target: str | Path) -> None:
    """Refuse a target whose parent (or itself) cannot be written."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"--out {target} is a file, not a directory. Choose a directory.")
    parent = target.absolute().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    for where in (existing, target if target.exists() else None):
        if where is not None and not os.access(where, os.W_OK | os.X_OK):
            raise OutputError(f"the output directory {where} is not writable (permission "
                              "denied). Choose another --out directory or change its "
                              "permissions.")


def _foreign_files(target: Path) -> list[str]:
    """Files in ``target`` that no causal-hcc run wrote (not in its manifest)."""
    present = _files_under(target)
    if not present:
        return []
    try:
        listed = set(json.loads((target / MANIFEST).read_text("utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return present
    return [f for f in present if f != MANIFEST and f not in listed]


class OutputDir:
    """Stage a run's output beside ``target``; :meth:`commit` moves it into place.

    Use as a context manager: entering checks the target, takes the lock and makes the
    staging directory (:attr:`path`, where everything is written); leaving without
    :meth:`commit` (an error, a kill) removes the staging directory and the lock and
    leaves ``target`` untouched.

    Parameters
    ----------
    target : path
        The ``--out`` directory.
    inputs : dict, optional
        ``{option: path}`` of the run's input files, none of which may lie in ``target``.
    """

    def __init__(self, target: str | Path, inputs: dict | None = None):
        self.target = Path(target).absolute()
        self.inputs = dict(inputs or {})
        self.parent = self.target.parent
        self.lock = self.parent / f"{self.target.name}.lock"
        self.path: Path | None = None
        self._locked = False
        self._committed = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "OutputDir":
        check_inputs(self.target, self.inputs)
        check_writable(self.target)
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise OutputError(f"the output directory {self.parent} cannot be created "
                              "(permission denied).") from None
        self._acquire()
        try:
            self._recover()
            if self.target.exists():
                foreign = _foreign_files(self.target)
                if foreign:
                    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                                      if len(foreign) > 5 else "")
                    raise OutputError(
                        f"--out {self.target} holds files no causal-hcc run wrote ({shown}). "
                        "A run replaces the whole directory, so it would delete them; "
                        "choose a new or empty --out directory, or move them.")
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-",
                                              dir=self.parent))
            os.chmod(self.path, 0o777 & ~_umask())  # mkdtemp's 0700 is for secrets
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path is not None and self.path.exists() and not self._committed:
            shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    # ------------------------------------------------------------------ lock
    def _acquire(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if _pid_alive(pid) and pid != os.getpid():
                    raise OutputError(f"another causal-hcc run is writing to {self.target} "
                                      f"(pid {pid}; lock file {self.lock}). Wait for it to "
                                      "finish, or choose another --out directory.") from None
                self.lock.unlink(missing_ok=True)  # stale: its writer is gone
                continue
            except PermissionError:
                raise OutputError(f"the output directory {self.parent} is not writable "
                                  "(permission denied).") from None
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            self._locked = True
            return
        raise OutputError(f"could not take the lock {self.lock}; another run keeps "
                          "creating it.")

    def _release(self) -> None:
        if not self._locked:
            return
        try:
            if self.lock.read_text().strip() == str(os.getpid()):
                self.lock.unlink()
        except OSError:
            pass
        self._locked = False

    def _recover(self) -> None:
        """Under the lock: finish or undo what a killed run left beside the target."""
        name = self.target.name
        olds = sorted(self.parent.glob(f".{name}.old-*"))
        if olds and not self.target.exists():
            os.rename(olds.pop(), self.target)  # killed between the two renames
        for leftover in [*olds, *self.parent.glob(f".{name}.partial-*")]:
            shutil.rmtree(leftover, ignore_errors=True)

    # ------------------------------------------------------------------ commit
    def commit(self, info: dict | None = None) -> list[Path]:
        """Write ``manifest.json`` (``info`` + every file's SHA-256) and move the staged
        directory into place; returns the final paths of the files."""
        files = {rel: sha256_of(self.path / rel) for rel in _files_under(self.path)
                 if rel != MANIFEST}
        from causal_hcc._numeric import to_jsonable  # numpy and scipy: not at start-up
        manifest = dict(to_jsonable(info or {}), files=files)
        (self.path / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        self._swap()
        self._committed = True
        return [self.target / rel for rel in (*files, MANIFEST)]

    def _swap(self) -> None:
        if not self.target.exists():
            os.rename(self.path, self.target)
            return
        if _exchange(self.path, self.target):
            shutil.rmtree(self.path, ignore_errors=True)  # now holds the previous run
            return
        old = self.parent / f".{self.target.name}.old-{os.getpid()}"
        os.rename(self.target, old)
        os.rename(self.path, self.target)
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False if the
    system cannot, and the caller falls back to two renames."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))
