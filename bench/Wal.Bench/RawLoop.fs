/// The device's limit for a write workload: the same bytes per Save as the engine writes,
/// appended with RandomAccess.Write (pwrite) to a file preallocated as etcd preallocates a
/// segment, then fdatasync (libc, through P/Invoke) per Save. No framing, no CRC, no index:
/// what is left is the disk.
[<RequireQualifiedAccess>]
module Wal.Bench.RawLoop

open System
open System.IO
open System.Runtime.InteropServices
open Microsoft.Win32.SafeHandles

/// A file preallocated to `bytes` with fallocate mode 0, which sets its size, as etcd's
/// fileutil.Preallocate does. Not File.OpenHandle's preallocationSize: .NET asks for
/// FALLOC_FL_KEEP_SIZE, which leaves the size 0, so every append's fdatasync would also commit
/// a new size (58 µs of CPU a Save against etcd's 30-36, `wal-bench floor`).
let private create (path: string) (bytes: int64) =
    let file =
        File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None)

    if Libc.fallocate (int (file.DangerousGetHandle()), 0, 0L, bytes) <> 0 then
        let errno = Marshal.GetLastPInvokeError()
        file.Dispose()
        failwith $"fallocate: errno {errno}"

    file

/// Runs the warm-up Saves on one file, then the workload's Saves on a second, preallocated to
/// exactly what they write (writing past the preallocation would add a size update to every
/// fdatasync); each Save is a pwrite of
/// bytesPerSave bytes and, when the workload syncs, an fdatasync. There is nothing to scan.
let run (dir: string) (w: Workload) (bytesPerSave: int) (warmup: int) =
    Directory.CreateDirectory dir |> ignore
    let bytes = Array.init bytesPerSave byte

    let saver (file: SafeFileHandle) =
        let fd = int (file.DangerousGetHandle())
        let mutable offset = 0L

        fun () ->
            RandomAccess.Write(file, ReadOnlySpan bytes, offset)
            offset <- offset + int64 bytesPerSave

            if w.SyncPerSave && Libc.fdatasync fd <> 0 then
                failwith $"fdatasync: errno {Marshal.GetLastPInvokeError()}"

    do
        use warm =
            create (Path.Combine(dir, "warmup.log")) (int64 bytesPerSave * int64 (max 1 warmup))

        Run.warmUp warmup (saver warm)

    use file =
        create (Path.Combine(dir, "raw.log")) (int64 bytesPerSave * int64 w.Saves)

    let save = saver file
    let clock = Run.start ()

    for _ = 1 to w.Saves do
        save ()

    let seconds, cpu, threadBytes, _ = Run.stop clock

    {
        Seconds = seconds
        CpuSeconds = cpu
        Entries = Workload.entries w
        AllocatedBytes = threadBytes
        CutAllocatedBytes = 0L
        Cuts = 0
        ScanSeconds = 0.0
        ScanCpuSeconds = 0.0
        ScanEntries = 0
        ScanAllocatedBytes = 0L
    }
