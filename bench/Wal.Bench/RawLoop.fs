/// The device's limit for a write workload: the same bytes per Save as the engine writes,
/// appended with RandomAccess.Write (pwrite) to one preallocated file, then fdatasync (libc,
/// through P/Invoke) per Save. No framing, no CRC, no index: what is left is the disk.
[<RequireQualifiedAccess>]
module Wal.Bench.RawLoop

open System
open System.IO
open System.Runtime.InteropServices

[<DllImport("libc", SetLastError = true)>]
extern int fdatasync(nativeint fd)

/// Runs warmup untimed Saves, then the workload's Saves, each a pwrite of bytesPerSave bytes and,
/// when the workload syncs, an fdatasync. There is nothing to scan.
let run (dir: string) (w: Workload) (bytesPerSave: int) (warmup: int) =
    Directory.CreateDirectory dir |> ignore
    let total = int64 bytesPerSave * int64 (warmup + w.Saves)

    use file =
        File.OpenHandle(
            Path.Combine(dir, "raw.log"),
            FileMode.CreateNew,
            FileAccess.ReadWrite,
            FileShare.None,
            FileOptions.None,
            total
        )

    let fd = file.DangerousGetHandle()
    let bytes = Array.init bytesPerSave byte
    let mutable offset = 0L

    let save () =
        RandomAccess.Write(file, ReadOnlySpan bytes, offset)
        offset <- offset + int64 bytesPerSave

        if w.SyncPerSave && fdatasync fd <> 0 then
            failwith $"fdatasync: errno {Marshal.GetLastPInvokeError()}"

    Run.warmUp warmup save

    let clock = Run.start ()

    for _ = 1 to w.Saves do
        save ()

    let seconds, cpu, threadBytes, _ = Run.stop clock

    {
        Seconds = seconds
        CpuSeconds = cpu
        Entries = Workload.entries w
        AllocatedBytes = threadBytes
        ScanSeconds = 0.0
        ScanCpuSeconds = 0.0
        ScanEntries = 0
        ScanAllocatedBytes = 0L
    }
