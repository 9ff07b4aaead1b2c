# The workloads behind the strace fixtures (*.txt here), one per name; each works in /tmp/sf/w.
# make-fixtures.sh records each under strace and keeps the lines that touch /tmp/sf/w or stdout.
import ctypes, fcntl, mmap, os, sys

W = "/tmp/sf/w"
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
B = lambda s: s.encode()

def create(p, data=b"", extra=0):
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | extra, 0o644)
    if data:
        os.write(fd, data)
    return fd

def openat_write():  # openat(O_CREAT|O_TRUNC), write, close; O_TRUNC of an existing file
    fd = create(W + "/a", b"hello"); os.close(fd)
    fd = create(W + "/a", b"hi"); os.close(fd)

def open_creat():  # the legacy open and creat calls
    fd = libc.syscall(2, B(W + "/o"), os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b"open"); os.close(fd)
    fd = libc.syscall(85, B(W + "/c"), 0o644); os.write(fd, b"creat"); os.close(fd)

def pwrite_writev():  # pwrite64, writev, pwritev, pwritev2
    fd = create(W + "/p", b"0123456789")
    os.pwrite(fd, b"ab", 2)
    os.writev(fd, [b"X", b"YZ"])
    os.pwritev(fd, [b"m", b"n"], 6)
    os.pwritev(fd, [b"q"], 0, os.RWF_DSYNC)
    class Iov(ctypes.Structure):
        _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]
    libc.syscall(296, fd, (Iov * 1)(Iov(b"P", 1)), 1, ctypes.c_long(8), 0)  # pwritev itself
    os.close(fd)

def lseek_read():  # a write at a position set by lseek, and at one moved by read
    fd = os.open(W + "/s", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"abcdefgh")
    os.lseek(fd, 2, os.SEEK_SET); os.write(fd, b"X")
    os.lseek(fd, 0, os.SEEK_SET); os.read(fd, 5); os.write(fd, b"Y")
    os.lseek(fd, 2, os.SEEK_END); os.write(fd, b"Z")
    os.close(fd)

def append():  # O_APPEND writes land at the end, whatever the position
    fd = create(W + "/l", b"one"); os.close(fd)
    fd = os.open(W + "/l", os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET); os.write(fd, b"two")
    os.close(fd)

def dups():  # dup, dup2, dup3, fcntl(F_DUPFD), fcntl(F_DUPFD_CLOEXEC): one shared position
    fd = create(W + "/d", b"ab")
    a = libc.dup(fd); os.write(a, b"c")
    os.dup2(fd, 20); os.write(20, b"d")
    os.dup2(fd, 21, inheritable=False); os.write(21, b"e")
    b = fcntl.fcntl(fd, fcntl.F_DUPFD, 30); os.write(b, b"f")
    c = os.dup(fd); os.write(c, b"g")
    for x in (fd, a, 20, 21, b, c): os.close(x)

def truncates():  # ftruncate and truncate, shorter and longer
    fd = create(W + "/t", b"abcdef"); os.ftruncate(fd, 3); os.close(fd)
    os.truncate(W + "/t", 5)

def fallocates():  # fallocate: grow, keep size, punch a hole
    fd = create(W + "/f", b"abcdef")
    os.posix_fallocate(fd, 0, 10)
    libc.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(100))
    libc.fallocate(fd, 3, ctypes.c_long(1), ctypes.c_long(2))
    os.close(fd)

def syncs():  # fsync, fdatasync, sync_file_range, syncfs; a directory fsync
    fd = create(W + "/y1", b"fsync"); os.fsync(fd); os.close(fd)
    fd = create(W + "/y2", b"fdatasync"); os.fdatasync(fd); os.close(fd)
    fd = create(W + "/y3", b"range"); libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(0), 2); os.close(fd)
    d = os.open(W, os.O_RDONLY | os.O_DIRECTORY); os.fsync(d); os.close(d)
    fd = create(W + "/y4", b"syncfs"); libc.syncfs(fd); os.close(fd)

def synchronous():  # O_SYNC and O_DSYNC writes are durable when they return
    fd = create(W + "/q1", b"sync", os.O_SYNC); os.close(fd)
    fd = create(W + "/q2", b"dsync", os.O_DSYNC); os.close(fd)

def renames():  # rename, renameat, renameat2, of files and of a directory with its files
    os.mkdir(W + "/dir"); fd = create(W + "/dir/x", b"x"); os.close(fd)
    os.rename(W + "/dir", W + "/moved")
    d = os.open(W, os.O_RDONLY | os.O_DIRECTORY)
    fd = create(W + "/r1", b"r"); os.close(fd)
    os.rename("r1", "r2", src_dir_fd=d, dst_dir_fd=d)
    libc.syscall(316, d, b"r2", d, b"r3", 1)
    os.close(d)

def removes():  # unlink, unlinkat, rmdir, unlinkat(AT_REMOVEDIR); mkdir, mkdirat
    fd = create(W + "/u1"); os.close(fd); fd = create(W + "/u2"); os.close(fd)
    d = os.open(W, os.O_RDONLY | os.O_DIRECTORY)
    os.mkdir(W + "/m1"); os.mkdir("m2", dir_fd=d)
    os.unlink(W + "/u1"); os.unlink("u2", dir_fd=d)
    os.rmdir(W + "/m1"); os.rmdir("m2", dir_fd=d)
    os.close(d)

def unmodellable():  # mmap(MAP_SHARED)/msync writes and writes outside the tree are reported
    fd = os.open(W + "/mm", os.O_CREAT | os.O_RDWR, 0o644); os.write(fd, b"\0" * 16)
    m = mmap.mmap(fd, 16); m[0:2] = b"hi"; m.flush(); m.close(); os.close(fd)
    fd = create("/tmp/sf/outside", b"out"); os.close(fd)

def answers():  # writes to stdout are acknowledgements, after the calls before them
    fd = create(W + "/k", b"v"); os.fsync(fd)
    os.write(1, b"ok 1\n")
    os.write(fd, b"w"); os.close(fd)
    os.write(1, b"ok 2\n")

globals()[sys.argv[1]]()
