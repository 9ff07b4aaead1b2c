/// libc, for what .NET's file API cannot ask for: open(2) flags, fallocate mode 0, fdatasync
/// (the raw loop and `wal-bench floor`).
[<RequireQualifiedAccess>]
module Wal.Bench.Libc

open System.Runtime.InteropServices

[<DllImport("libc", EntryPoint = "open", SetLastError = true)>]
extern int openFile(string path, int flags, int mode)

[<DllImport("libc", SetLastError = true)>]
extern nativeint pwrite(int fd, nativeint buffer, unativeint count, int64 offset)

[<DllImport("libc", SetLastError = true)>]
extern int fdatasync(int fd)

[<DllImport("libc", SetLastError = true)>]
extern int fsync(int fd)

[<DllImport("libc", SetLastError = true)>]
extern int syncfs(int fd)

[<DllImport("libc", SetLastError = true)>]
extern int fallocate(int fd, int mode, int64 offset, int64 length)

[<DllImport("libc", SetLastError = true)>]
extern int close(int fd)

// x86-64 Linux values (asm-generic's O_DIRECT is 0x10000: not portable beyond x86).
let O_RDONLY = 0x0
let O_WRONLY = 0x1
let O_DSYNC = 0x1000
let O_DIRECT = 0x4000
let O_CLOEXEC = 0x80000
