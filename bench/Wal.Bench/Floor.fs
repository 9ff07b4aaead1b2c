/// The floor under the W1/W2 CPU target (the engine at 0.5x etcd's CPU per entry): what one
/// durable append costs the process, in CPU and in Saves per second, by each way Linux offers to
/// make a small append durable, with nothing of a log around it. etcd's Save is the first of them
/// (a pwrite and an fdatasync on a fallocated file); if none of the others costs under half of it
/// on this machine, the target cannot be met by writing differently, only by doing fewer Saves.
///
///   wal-bench floor DIR SAVES BYTES
[<RequireQualifiedAccess>]
module Wal.Bench.Floor

// NativePtr and NativeMemory: O_DIRECT needs buffers aligned to 4 KiB, which managed arrays are not.
#nowarn "9"

open System
open System.IO
open System.Runtime.InteropServices
open FSharp.NativeInterop

/// How a file is made ready before its Saves.
type private Preparation =
    /// fallocate(fd, 0, 0, size), as etcd's fileutil.Preallocate with extendFile: the size is set and
    /// the extents are unwritten, so an fdatasync after the first write to a block also commits the
    /// block's conversion to written.
    | Fallocated
    /// File.OpenHandle's preallocationSize (the raw loop's file until 2026-11-26): .NET 10 calls
    /// fallocate(FALLOC_FL_KEEP_SIZE), so the size stays 0 and every append's fdatasync commits a
    /// new size.
    | KeepSize
    /// Every byte written with zeros, then fsync: written extents and a fixed size, so the Saves'
    /// syncs have no metadata to commit.
    | Zeroed

/// One way to make an append durable.
type private Mechanism =
    {
        Name: string
        Preparation: Preparation
        /// Flags for open(2) beside O_WRONLY | O_CLOEXEC.
        Flags: int
        /// Each Save writes the whole 4 KiB pages covering its bytes, from an aligned buffer:
        /// O_DIRECT takes nothing smaller or unaligned.
        Pages: bool
        Fdatasync: bool
        /// WalOptions.ZeroAheadBytes: a Save whose bytes reach past the space written so far also
        /// writes zeros over this many bytes after them, before its fdatasync (0: never).
        ZeroAhead: int
    }

/// One run of one mechanism.
type private Figures =
    {
        SavesPerSecond: float
        CpuMicrosPerSave: float
    }

/// A file being appended to. Payload and Pages are native, 4 KiB-aligned.
type private Target =
    {
        Fd: int
        Mechanism: Mechanism
        Bytes: int
        /// BYTES bytes, the same each Save.
        Payload: nativeint
        /// The pages one Save covers; between Saves it keeps the last, partial page's bytes at its
        /// start, as the next Save rewrites that page whole.
        Pages: nativeint
        mutable Offset: int64
        /// Where the space written (by Saves or zeros) ends.
        mutable WrittenTo: int64
        /// The file's length: zeros never go past it.
        Size: int64
    }

let private page = 4096

/// etcd's segment size: the file each mechanism starts on, unless the Saves need more.
let private segmentBytes = 64L <<< 20

/// Before each timed run, so that its first Saves (the file's first blocks, an idle device queue)
/// are not timed; the JIT is settled once, on /dev/null (settleJit).
let private warmupSaves = 200

/// Beyond this much at each end, verifying the written bytes would cost minutes at W3's bytes.
let private verifyBytes = 4L <<< 20

let private mechanisms =
    [
        {
            Name = "fallocate + pwrite + fdatasync (etcd)"
            Preparation = Fallocated
            Flags = 0
            Pages = false
            Fdatasync = true
            ZeroAhead = 0
        }
        {
            Name = "fallocate + pwrite, zero-ahead 1 MiB + fdatasync"
            Preparation = Fallocated
            Flags = 0
            Pages = false
            Fdatasync = true
            ZeroAhead = 1 <<< 20
        }
        {
            Name = "pre-zeroed + pwrite + fdatasync"
            Preparation = Zeroed
            Flags = 0
            Pages = false
            Fdatasync = true
            ZeroAhead = 0
        }
        {
            Name = "fallocate + O_DSYNC pwrite"
            Preparation = Fallocated
            Flags = Libc.O_DSYNC
            Pages = false
            Fdatasync = false
            ZeroAhead = 0
        }
        {
            Name = "pre-zeroed + O_DIRECT|O_DSYNC pages"
            Preparation = Zeroed
            Flags = Libc.O_DIRECT ||| Libc.O_DSYNC
            Pages = true
            Fdatasync = false
            ZeroAhead = 0
        }
        {
            Name = "pre-zeroed + O_DIRECT pages + fdatasync"
            Preparation = Zeroed
            Flags = Libc.O_DIRECT
            Pages = true
            Fdatasync = true
            ZeroAhead = 0
        }
        {
            Name = "fallocate KEEP_SIZE (.NET) + pwrite + fdatasync"
            Preparation = KeepSize
            Flags = 0
            Pages = false
            Fdatasync = true
            ZeroAhead = 0
        }
    ]

let private fail (call: string) =
    let errno = Marshal.GetLastPInvokeError()
    failwith $"{call}: errno {errno} ({Marshal.GetPInvokeErrorMessage errno})"

let private check (call: string) (result: int) =
    if result <> 0 then
        fail call

let inline private voidptr (p: nativeint) =
    NativePtr.toVoidPtr (NativePtr.ofNativeInt<byte> p)

let private roundUp (n: int64) =
    (n + int64 page - 1L) &&& ~~~(int64 page - 1L)

// A regular file's pwrite is short only at an error or a full disk; the loop makes either show as
// an errno rather than as bytes silently missing.
let private pwriteAll (fd: int) (buffer: nativeint) (count: int) (offset: int64) =
    let mutable written = 0

    while written < count do
        let n =
            Libc.pwrite (fd, buffer + nativeint written, unativeint (count - written), offset + int64 written)

        if n < 0n then
            fail "pwrite"
        elif n = 0n then
            failwith $"pwrite: nothing written at {offset + int64 written}"

        written <- written + int n

/// 1 MiB of zeros for zero-ahead, never freed.
let private zeros =
    lazy (NativePtr.toNativeInt (NativePtr.ofVoidPtr<byte>(NativeMemory.AllocZeroed(unativeint (1 <<< 20)))))

let private save (t: Target) =
    let m = t.Mechanism

    if m.Pages then
        let start = t.Offset &&& ~~~(int64 page - 1L)
        let within = int (t.Offset - start)
        let ending = within + t.Bytes
        let length = int (roundUp (int64 ending))
        // The copy stands in for the kernel's copy into the page cache that a buffered pwrite makes.
        NativeMemory.Copy(voidptr t.Payload, voidptr (t.Pages + nativeint within), unativeint t.Bytes)
        // The file's bytes past the append are zeros (pre-zeroed); the page must say so too.
        NativeMemory.Clear(voidptr (t.Pages + nativeint ending), unativeint (length - ending))
        pwriteAll t.Fd t.Pages length start
        let last = ending &&& ~~~(page - 1)

        if last > 0 && ending > last then
            NativeMemory.Copy(voidptr (t.Pages + nativeint last), voidptr t.Pages, unativeint (ending - last))
    else
        pwriteAll t.Fd t.Payload t.Bytes t.Offset

    let ending = t.Offset + int64 t.Bytes

    // The engine's rule (SegmentWriter.ZeroAhead): only a Save that reaches new space, and is no
    // more than a sixteenth of the zero-ahead, takes zeros along.
    if
        m.ZeroAhead > 0
        && ending > t.WrittenTo
        && ending < t.Size
        && t.Bytes * 16 <= m.ZeroAhead
    then
        let until = min t.Size (ending + int64 m.ZeroAhead)
        pwriteAll t.Fd zeros.Value (int (until - ending)) ending
        t.WrittenTo <- until

    t.WrittenTo <- max t.WrittenTo ending

    if m.Fdatasync then
        check "fdatasync" (Libc.fdatasync t.Fd)

    t.Offset <- t.Offset + int64 t.Bytes

let private saves (t: Target) (count: int) =
    for _ = 1 to count do
        save t

/// fsync, then syncfs: the previous run's deleted file is freed in a journal commit that also
/// sends its blocks' discards (when mounted with discard, as / is here); left pending, that commit
/// would land in this run's first fdatasyncs.
let private settle (fd: int) =
    check "fsync" (Libc.fsync fd)
    check "syncfs" (Libc.syncfs fd)

let private prepare (path: string) (preparation: Preparation) (size: int64) =
    match preparation with
    | KeepSize ->
        use h =
            File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None, size)

        settle (int (h.DangerousGetHandle()))
    | Fallocated ->
        use h = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite)
        let fd = int (h.DangerousGetHandle())
        check "fallocate" (Libc.fallocate (fd, 0, 0L, size))
        settle fd
    | Zeroed ->
        use h = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite)
        let zeros = Array.zeroCreate<byte>(1 <<< 20)
        let mutable at = 0L

        while at < size do
            let n = int (min (int64 zeros.Length) (size - at))
            RandomAccess.Write(h, ReadOnlySpan(zeros, 0, n), at)
            at <- at + int64 n

        settle (int (h.DangerousGetHandle()))

/// Checks the first and last bytes the Saves wrote: a page rewrite that lost a previous Save's bytes
/// would make the O_DIRECT figures those of a log that does not work.
let private verify (path: string) (bytes: int) (written: int64) =
    use h = File.OpenHandle(path, FileMode.Open, FileAccess.Read)
    let length = RandomAccess.GetLength h

    if length < written then
        failwith $"{path}: {length} bytes, the Saves wrote {written}"

    let range (from: int64) (count: int64) =
        let buffer = Array.zeroCreate<byte>(int count)
        let read = RandomAccess.Read(h, Span buffer, from)

        if int64 read <> count then
            failwith $"{path}: read {read} of {count} bytes at {from}"

        for i = 0 to buffer.Length - 1 do
            let at = from + int64 i
            let expected = byte (at % int64 bytes)

            if buffer[i] <> expected then
                failwith $"{path}: byte {at} is {buffer[i]}, the Saves wrote {expected}"

    range 0L (min written verifyBytes)
    let tail = max 0L (written - verifyBytes)
    range tail (written - tail)

/// Runs f on BYTES of payload and a page buffer for them, both 4 KiB-aligned native memory.
let private withBuffers (bytes: int) (f: nativeint -> nativeint -> 'a) =
    let payload = NativeMemory.AlignedAlloc(unativeint bytes, unativeint page)
    let pagesBytes = int (roundUp (int64 bytes + int64 page))
    let pages = NativeMemory.AlignedAlloc(unativeint pagesBytes, unativeint page)

    try
        for i = 0 to bytes - 1 do
            NativePtr.set (NativePtr.ofVoidPtr<byte> payload) i (byte i)

        // The file is zeros before the first Save, so the first page is too.
        NativeMemory.Clear(pages, unativeint pagesBytes)

        f
            (NativePtr.toNativeInt (NativePtr.ofVoidPtr<byte> payload))
            (NativePtr.toNativeInt (NativePtr.ofVoidPtr<byte> pages))
    finally
        NativeMemory.AlignedFree payload
        NativeMemory.AlignedFree pages

let private openFile (path: string) (flags: int) =
    let fd = Libc.openFile (path, Libc.O_WRONLY ||| Libc.O_CLOEXEC ||| flags, 0)

    if fd < 0 then
        fail $"open {path}"

    fd

/// Brings save to the tiered JIT's final code before any run is timed: F# drops
/// MethodImplOptions.AggressiveOptimization, and 200 Saves take too little time for the tier-1
/// recompile (about 100 ms after the 30th call, on a background thread), which would then land in
/// the first run's CPU. /dev/null takes both of save's write paths without touching the disk.
let private settleJit (bytes: int) =
    withBuffers bytes (fun payload pages ->
        let fd = openFile "/dev/null" 0

        try
            let target (m: Mechanism) =
                {
                    Fd = fd
                    Mechanism = { m with Fdatasync = false }
                    Bytes = bytes
                    Payload = payload
                    Pages = pages
                    Offset = 0L
                    WrittenTo = 0L
                    Size = 0L
                }

            let buffered = target mechanisms[0]
            let direct = target (mechanisms |> List.find (fun m -> m.Pages))

            Run.warmUp 1 (fun () ->
                saves buffered 30
                saves direct 30)
        finally
            check "close" (Libc.close fd))

let private measure (dir: string) (run: int) (m: Mechanism) (count: int) (bytes: int) (size: int64) =
    let path = Path.Combine(dir, $"floor-{run}.log")
    File.Delete path

    try
        prepare path m.Preparation size

        let figures =
            withBuffers bytes (fun payload pages ->
                let fd = openFile path m.Flags

                try
                    let t =
                        {
                            Fd = fd
                            Mechanism = m
                            Bytes = bytes
                            Payload = payload
                            Pages = pages
                            Offset = 0L
                            WrittenTo = 0L
                            Size = size
                        }

                    saves t warmupSaves
                    let clock = Run.start ()
                    saves t count
                    let seconds, cpu, _, _ = Run.stop clock

                    {
                        SavesPerSecond = float count / seconds
                        CpuMicrosPerSave = cpu * 1e6 / float count
                    }
                finally
                    check "close" (Libc.close fd))

        verify path bytes (int64 (warmupSaves + count) * int64 bytes)
        figures
    finally
        File.Delete path

/// The file system DIR is on, from the longest mount point above it.
let private fileSystem (dir: string) =
    let full = Path.GetFullPath dir

    File.ReadAllLines "/proc/self/mountinfo"
    |> Array.choose (fun line ->
        let parts = line.Split ' '
        let dash = Array.IndexOf(parts, "-")
        let mount = parts[4].Replace("\\040", " ")

        if dash > 4 && (full = mount || full.StartsWith(mount.TrimEnd '/' + "/")) then
            Some(mount, $"{parts[dash + 1]} on {parts[dash + 2]}")
        else
            None)
    |> Array.sortByDescending (fun (mount, _) -> mount.Length)
    |> Array.tryHead
    |> Option.map snd
    |> Option.defaultValue "unknown file system"

/// The kernel's view of each real disk's cache: with "write back" and no FUA, every durable write
/// ends in a separate cache flush, whatever the mechanism.
let private devices () =
    [
        if Directory.Exists "/sys/block" then
            for d in Directory.GetDirectories "/sys/block" |> Array.sort do
                let name = Path.GetFileName d

                if not (name.StartsWith "loop" || name.StartsWith "zram") then
                    let read (file: string) =
                        let path = Path.Combine(d, "queue", file)

                        if File.Exists path then
                            Some $"{file} {File.ReadAllText(path).Trim()}"
                        else
                            None

                    match List.choose id [ read "write_cache"; read "fua" ] with
                    | [] -> ()
                    | found -> yield name + ": " + String.Join(", ", found)
    ]

/// Runs every mechanism twice, forward then backward (the machine is noisy; a drift shows as the
/// two figures parting), each run on a fresh file it deletes, and prints both figures.
let run (dir: string) (count: int) (bytes: int) =
    if count < 1 || bytes < 1 then
        failwith "wal-bench floor: SAVES and BYTES must be positive"

    let created = not (Directory.Exists dir)
    Directory.CreateDirectory dir |> ignore
    // At W3's bytes 64 MiB holds 163 Saves; etcd would cut a segment there, which is not measured
    // here, so the file grows to hold them all.
    let size = max segmentBytes (roundUp (int64 (warmupSaves + count) * int64 bytes))
    let order = mechanisms @ List.rev mechanisms
    settleJit bytes

    let results =
        order
        |> List.mapi (fun i m ->
            eprintfn "[%s] floor: %s" (DateTime.UtcNow.ToString "HH:mm:ss") m.Name
            m.Name, measure dir i m count bytes size)

    if created && Seq.isEmpty (Directory.EnumerateFileSystemEntries dir) then
        Directory.Delete dir

    printfn
        "floor: %d Saves x %d B per run after %d warm-up Saves, each run on a fresh %d MiB file in %s (%s)"
        count
        bytes
        warmupSaves
        (size >>> 20)
        dir
        (fileSystem dir)

    printfn "CPU: user+system of this process over the timed Saves (Process.TotalProcessorTime)"
    printfn "order: 1-%d then %d-1; figures are the first run / the second" mechanisms.Length mechanisms.Length

    for line in devices () do
        printfn "device %s" line

    printfn "%-54s %19s %22s" "mechanism" "Saves/s" "CPU us/Save"

    for m in mechanisms do
        match results |> List.filter (fst >> (=) m.Name) |> List.map snd with
        | [ a; b ] ->
            printfn
                "%-54s %9.0f / %7.0f %11.1f / %8.1f"
                m.Name
                a.SavesPerSecond
                b.SavesPerSecond
                a.CpuMicrosPerSave
                b.CpuMicrosPerSave
        | _ -> ()
