"""A disk that can stall, for the recording tests: a FUSE file system that passes
everything through to a folder, except that while the file FLAG exists and is empty
every write (and fsync) waits, as on a drive waking up or a network folder gone quiet;
while FLAG holds a number, writes go through at that many kB/s (a slow disk). A test
that dies while the disk is stalled lets it go: nothing waits for a parent that is gone
or going (its process cannot end while one of its threads waits for a write here).

    /usr/bin/python3 stalling-disk.py BACKING MOUNTPOINT FLAG

Runs in the foreground until unmounted. Needs fusepy (Debian: python3-fusepy) and
/dev/fuse.
"""

import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class StallingDisk(Operations):
    def __init__(self, backing, flag):
        self.backing, self.flag = backing, flag
        self.parent = os.getppid()

    def _path(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _parent_alive(self):
        if os.getppid() != self.parent:
            return False
        try:
            with open(f"/proc/{self.parent}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state not in ("Z", "X")

    def _wait_while_stalled(self, size=0):
        while self._parent_alive():
            try:
                with open(self.flag) as f:
                    rate = f.read().strip()
            except FileNotFoundError:
                return
            if rate:
                time.sleep(size / (float(rate) * 1000))
                return
            time.sleep(0.02)

    def getattr(self, path, fh=None):
        try:
            st = os.lstat(self._path(path))
        except OSError as e:
            raise FuseOSError(e.errno)
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        os.rmdir(self._path(path))

    def unlink(self, path):
        os.unlink(self._path(path))

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    def truncate(self, path, length, fh=None):
        if fh is None:
            os.truncate(self._path(path), length)
        else:
            os.ftruncate(fh, length)

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        # Read-write whatever was asked: the kernel reads through this handle too
        # (pages of a file mapped into memory, as SQLite maps its -shm file).
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        self._wait_while_stalled(len(data))
        return os.pwrite(fh, data, offset)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        self._wait_while_stalled()
        os.fsync(fh)

    def release(self, path, fh):
        os.close(fh)

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}


if __name__ == "__main__":
    backing, mountpoint, flag = sys.argv[1:4]
    FUSE(StallingDisk(backing, flag), mountpoint, foreground=True)
