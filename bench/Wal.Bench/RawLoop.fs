/// The device's limit for a write workload: the same bytes per Save as the engine writes,
/// appended with RandomAccess.Write (pwrite) to a preallocated file, then fdatasync (libc,
/// through P/Invoke) per Save. No framing, no CRC, no index: what is left is the disk.
[<RequireQualifiedAccess>]
module Wal.Bench.RawLoop

open System
open System.IO
open System.Runtime.InteropServices
open Microsoft.Win32.SafeHandles

[<DllImport("libc", SetLastError = true)>]
extern int fdatasync(nativeint fd)

/// A file preallocated (posix_fallocate) to `bytes`.
let private create (path: string) (bytes: int64) =
    File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None, bytes)

/// Runs the warm-up Saves on one file, then the workload's Saves on a second, preallocated to
/// exactly what they write (the time-based warm-up writes an unknown amount, and writing past
/// the preallocation would add a size update to every fdatasync); each Save is a pwrite of
/// bytesPerSave bytes and, when the workload syncs, an fdatasync. There is nothing to scan.
let run (dir: string) (w: Workload) (bytesPerSave: int) (warmup: int) =
    Directory.CreateDirectory dir |> ignore
    let bytes = Array.init bytesPerSave byte

    let saver (file: SafeFileHandle) =
        let fd = file.DangerousGetHandle()
        let mutable offset = 0L

        fun () ->
            RandomAccess.Write(file, ReadOnlySpan bytes, offset)
            offset <- offset + int64 bytesPerSave

            if w.SyncPerSave && fdatasync fd <> 0 then
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
