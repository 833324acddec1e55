"""The lab's log files inside its nodes: appended by several processes at once, rotated by size.

A log `x` is the file `x` (the newest records) and its rotated parts `x.1` (the
part before) ... `x.KEEP` (the oldest kept). `x.generation` counts the
rotations: the file `x` holds generation G, `x.K` generation G - K. A reader on
the host (lab/logs.py) names a position in the log as (generation, offset), so
a position stays valid when its file is renamed by a rotation. The count is
changed, and the files renamed, under an exclusive flock of `x.generation`;
readers take a shared one to see the files and the count at one moment.

    RotatingLog   appends whole lines under the lock (the NAT gateways share
                  nat-translations.log, the firewall endpoints alert.log and
                  flow.log) and rotates when the file reaches the size limit.
    rotate        renames x -> x.1 -> ... -> x.KEEP (the oldest dropped).
    Tail          reads the complete lines of a file some other process writes
                  (Suricata's eve.json), and moves on to the new file once the
                  writer has reopened its name after a rotation.

A rotated part is complete once the file `x` exists again: a RotatingLog makes
the new `x` in the same locked step; Suricata makes it when it reopens its
logs after SIGHUP (before that, its records still go to the renamed file).
Standard library only: it runs in the lab's images (copied there by
compose/images/Dockerfile) and in the host's unit tests.
"""
import fcntl
import itertools
import os
import threading
from contextlib import contextmanager

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_KEEP = 8


def limits_from_env(environ=os.environ):
    """(max bytes, parts kept) from NFWLAB_LOG_MAX_SIZE and NFWLAB_LOG_KEEP (set by the lab's compose file)."""
    return (int(environ.get("NFWLAB_LOG_MAX_SIZE", DEFAULT_MAX_BYTES)),
            int(environ.get("NFWLAB_LOG_KEEP", DEFAULT_KEEP)))


def part(path, k):
    """The k-th rotated part of a log (k=0: the file itself)."""
    return path if k == 0 else f"{path}.{k}"


def generation_file(path):
    return f"{path}.generation"


def read_generation(fd):
    data = os.pread(fd, 32, 0).strip()
    return int(data) if data.isdigit() else 0


def _write_generation(fd, generation):
    data = f"{generation}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def open_lock(path):
    """The log's lock file (also its rotation count), opened for life."""
    return os.open(generation_file(path), os.O_RDWR | os.O_CREAT, 0o644)


@contextmanager
def locked(fd):
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def rotate(path, keep, lock_fd):
    """Renames x -> x.1 -> ... -> x.KEEP (what was x.KEEP is dropped) and counts the rotation; the caller
    holds the lock. Parts beyond KEEP (left by a larger KEEP before) go, so that every part's number keeps
    saying its generation."""
    k = keep + 1
    while os.path.exists(part(path, k)):
        os.unlink(part(path, k))
        k += 1
    for k in range(keep - 1, 0, -1):
        if os.path.exists(part(path, k)):
            os.replace(part(path, k), part(path, k + 1))
    if keep > 0:
        os.replace(path, part(path, 1))
    else:
        os.unlink(path)
    _write_generation(lock_fd, read_generation(lock_fd) + 1)


class RotatingLog:
    """A JSON-lines log that several processes append to (each in its own container, the file on a shared
    mount): every line is one write under the log's lock, to the file the log's name holds at that moment, and
    the writer that takes the file to `max_bytes` rotates it (0: never)."""

    def __init__(self, path, max_bytes=DEFAULT_MAX_BYTES, keep=DEFAULT_KEEP):
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self.lock_fd = open_lock(path)
        self.fd = -1
        self.thread_lock = threading.Lock()  # flock does not exclude the threads sharing one descriptor

    def _current(self):
        """The descriptor of the file the log's name holds now (another writer may have rotated it)."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            named = None
        if self.fd >= 0:
            mine = os.fstat(self.fd)
            if named is not None and (named.st_ino, named.st_dev) == (mine.st_ino, mine.st_dev):
                return self.fd
            os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self.fd

    def write(self, line):
        data = line.encode()
        with self.thread_lock, locked(self.lock_fd):
            fd = self._current()
            while data:
                data = data[os.write(fd, data):]
            if self.max_bytes and os.fstat(fd).st_size >= self.max_bytes:
                rotate(self.path, self.keep, self.lock_fd)
                self._current()  # the new file, at once: the part just rotated is complete

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
        os.close(self.lock_fd)


class Tail:
    """The complete lines a process appends to `path`, read through a descriptor kept open, so that a rotation
    (the name moved away) loses nothing: once the name holds a new file (the writer reopened it), the rest of
    the old one is read, then the new one from its start."""

    def __init__(self, path, bookmark=None):
        self.path = path
        self.file = None
        self.pending = b""
        # Where the reader got to (the file's inode and offset), kept across restarts of the reader: a node
        # restarted in place (`nfwlab repair`) goes on after the last line it had read, instead of reading
        # the log again from its start.
        self.bookmark = bookmark
        self.resume = self._load_bookmark()

    def _load_bookmark(self):
        try:
            with open(self.bookmark) as f:
                inode, offset = (int(v) for v in f.read().split())
            return inode, offset
        except (TypeError, OSError, ValueError):
            return None

    def save(self):
        """Writes the bookmark: the position after the last complete line read."""
        if self.bookmark is None or self.file is None:
            return
        position = self.file.tell() - len(self.pending)
        temporary = self.bookmark + ".new"
        with open(temporary, "w") as f:
            f.write(f"{os.fstat(self.file.fileno()).st_ino} {position}\n")
        os.replace(temporary, self.bookmark)

    def _open(self):
        resume, self.resume = self.resume, None
        if resume is not None:  # the file the reader was in: the log itself, or a part rotated since
            for k in itertools.count():
                name = part(self.path, k)
                try:
                    if os.stat(name).st_ino == resume[0]:
                        self.file = open(name, "rb")  # noqa: SIM115 (kept open across reads)
                        self.file.seek(resume[1])
                        return
                except FileNotFoundError:
                    if k > 0:
                        break
        try:
            self.file = open(self.path, "rb")  # noqa: SIM115 (kept open across reads)
        except FileNotFoundError:
            self.file = None

    def renamed(self):
        """True when the name now holds another file than the one being read (or none)."""
        if self.file is None:
            return True
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return True
        mine = os.fstat(self.file.fileno())
        return (named.st_ino, named.st_dev) != (mine.st_ino, mine.st_dev)

    def size(self):
        """The size of the file being read (0 before there is one)."""
        return os.fstat(self.file.fileno()).st_size if self.file is not None else 0

    def lines(self):
        """The complete lines written since the last call (without their newline)."""
        if self.file is None:
            self._open()
            if self.file is None:
                return []
        out = self._read()
        if self.renamed() and os.path.exists(self.path):
            out += self._read()  # the writer has moved to the new file: the old one is complete
            self.file.close()
            self.pending = b""  # a line the old file never finished
            self._open()
            if self.file is not None:
                out += self._read()
        return out

    def _read(self):
        chunk = self.file.read()
        if not chunk:
            return []
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()  # a line still being written
        return lines

    def close(self):
        if self.file is not None:
            self.file.close()


def rotate_reopened(path, keep, reopen):
    """Rotates a log another process writes (Suricata's eve.json), then asks it to reopen its files (`reopen`:
    SIGHUP to Suricata); until it does, its records still go to x.1, which is why readers wait for the new x."""
    lock_fd = open_lock(path)
    try:
        with locked(lock_fd):
            rotate(path, keep, lock_fd)
    finally:
        os.close(lock_fd)
    reopen()
