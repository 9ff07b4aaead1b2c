/// What one contestant's run of one workload measured, and the clocks it is measured with.
namespace Wal.Bench

open System
open System.Diagnostics
open System.Text.Json

/// A run: the timed Saves (wall clock, process CPU, bytes the saving thread allocated), then the
/// full scan of what was written (wall clock, process CPU, bytes the process allocated).
type RunResult =
    {
        Seconds: float
        CpuSeconds: float
        Entries: int
        AllocatedBytes: int64
        /// Of AllocatedBytes, what the Saves that cut a segment allocated (the engine only).
        CutAllocatedBytes: int64
        /// Segments cut during the timed Saves (the engine only).
        Cuts: int
        ScanSeconds: float
        ScanCpuSeconds: float
        ScanEntries: int
        ScanAllocatedBytes: int64
    }

/// A clock reading: wall, process CPU (user + system) and allocation. A struct, so that taking
/// the reading allocates nothing the allocation figures would count.
[<Struct>]
type Reading =
    {
        Clock: Stopwatch
        Cpu: TimeSpan
        ThreadBytes: int64
        ProcessBytes: int64
    }

[<RequireQualifiedAccess>]
module Run =

    let private cpu () =
        use p = Process.GetCurrentProcess()
        p.TotalProcessorTime

    /// Starts the clocks.
    let start () =
        let clock = Stopwatch()
        let cpu = cpu ()
        let threadBytes = GC.GetAllocatedBytesForCurrentThread()
        let processBytes = GC.GetTotalAllocatedBytes true
        clock.Start()

        {
            Clock = clock
            Cpu = cpu
            ThreadBytes = threadBytes
            ProcessBytes = processBytes
        }

    /// Seconds, CPU seconds, thread-allocated and process-allocated bytes since start.
    let stop (r: Reading) =
        r.Clock.Stop()
        // Allocation first: reading the CPU clock allocates a Process object.
        let threadBytes = GC.GetAllocatedBytesForCurrentThread() - r.ThreadBytes
        let processBytes = GC.GetTotalAllocatedBytes true - r.ProcessBytes
        r.Clock.Elapsed.TotalSeconds, (cpu () - r.Cpu).TotalSeconds, threadBytes, processBytes

    let private options =
        JsonSerializerOptions(PropertyNamingPolicy = JsonNamingPolicy.CamelCase)

    /// One line of JSON, as the etcd peer prints its figures.
    let toJson (r: RunResult) = JsonSerializer.Serialize(r, options)

    /// Reads a run's JSON line (the peer's has no allocation figures: they stay 0).
    let ofJson (json: string) =
        use doc = JsonDocument.Parse json
        let root = doc.RootElement

        let get (name: string) =
            match root.TryGetProperty name with
            | true, v -> v.GetDouble()
            | false, _ -> 0.0

        {
            Seconds = get "seconds"
            CpuSeconds = get "cpuSeconds"
            Entries = int (get "entries")
            AllocatedBytes = int64 (get "allocatedBytes")
            CutAllocatedBytes = int64 (get "cutAllocatedBytes")
            Cuts = int (get "cuts")
            ScanSeconds = get "scanSeconds"
            ScanCpuSeconds = get "scanCpuSeconds"
            ScanEntries = int (get "scanEntries")
            ScanAllocatedBytes = int64 (get "scanAllocatedBytes")
        }

    /// Runs `saves` warm-up Saves and, when there are any, more until a second has passed: .NET
    /// compiles hot methods again (tiered JIT) about 100 ms after their 30th call, on a background
    /// thread whose CPU time would otherwise land in the timed part.
    let warmUp (saves: int) (save: unit -> unit) =
        let clock = Stopwatch.StartNew()

        for _ = 1 to saves do
            save ()

        while saves > 0 && clock.Elapsed.TotalSeconds < 1.0 do
            save ()

    /// The faster of two scans (seconds, CPU seconds, entries, bytes allocated): the first pays
    /// for the JIT and the page cache, as a process that recovers once at start does.
    let bestOfTwo (scan: unit -> float * float * int * int64) =
        let a = scan ()
        let b = scan ()
        let seconds (s, _, _, _) = s
        if seconds b < seconds a then b else a

    /// The payload byte the benches write at position i (all contestants write the same bytes).
    let payload (bytes: int) = Array.init bytes byte
