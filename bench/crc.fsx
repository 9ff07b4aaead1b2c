// CRC-32C on record-sized inputs: the engine's (Format/Crc32C.cs: three lanes of the CRC
// instruction, and from 256 bytes, where the machine has VPCLMULQDQ, a carry-less fold)
// against System.IO.Hashing's Crc32 with the Castagnoli parameter set, in one process and
// interleaved, so that the ratio, not the absolute figure, carries the meaning on a shared machine.
// Run after a build: dotnet fsi bench/crc.fsx
#r "../src/Wal.Core/bin/Release/net10.0/Google.Protobuf.dll"
#r "../src/Wal.Core/bin/Release/net10.0/Wal.Core.dll"
#r "nuget: System.IO.Hashing, 11.0.0"

open System
open System.Diagnostics
open System.IO.Hashing

/// Go's crc32.Update: extends a finished checksum with more data, as the WAL's chain does.
type Update = delegate of uint32 * ReadOnlySpan<byte> -> uint32

// The engine's Crc32C is internal; a delegate to it costs the same call as the others pay.
let engine =
    typeof<Wal.WriteAheadLog>.Assembly.GetType("Wal.Format.Crc32C").GetMethod("Update").CreateDelegate<Update>()

let castagnoli = Crc32ParameterSet.Crc32C

/// The drop-in replacement: a parameter set whose initial value continues the chain.
let hashingChained =
    Update(fun crc data ->
        let set =
            Crc32ParameterSet.Create(castagnoli.Polynomial, ~~~crc, castagnoli.FinalXorValue, castagnoli.ReflectValues)

        Crc32.HashToUInt32(set, data))

/// One chain of the CRC instruction, eight bytes a step: the engine's loop before it striped
/// inputs into three lanes (Format/Crc32C.cs), kept here to show the difference.
let singleChain =
    Update(fun crc data ->
        let mutable c = ~~~crc
        let mutable i = 0

        while i + 8 <= data.Length do
            c <- Numerics.BitOperations.Crc32C(c, Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(data.Slice i))
            i <- i + 8

        while i < data.Length do
            c <- Numerics.BitOperations.Crc32C(c, data[i])
            i <- i + 1

        ~~~c)

/// What System.IO.Hashing does best: a one-shot hash from the start of a chain (crc 0 only).
let hashingOneShot = Update(fun _ data -> Crc32.HashToUInt32(castagnoli, data))

/// A running hash: the chain over a segment is the CRC of all the data so far, so one
/// instance can carry it (valid only when every call continues the previous result).
let running = Crc32(castagnoli)

let hashingRunning =
    Update(fun _ data ->
        running.Append data
        running.GetCurrentHashAsUInt32())

let check () =
    let digits = Text.Encoding.ASCII.GetBytes "123456789"
    let whole = engine.Invoke(0u, ReadOnlySpan digits)
    let first = engine.Invoke(0u, ReadOnlySpan(digits, 0, 4))

    if whole <> 0xE3069283u then
        failwith "engine check value"

    for size in 0..3000 do
        let data = Array.init size (fun i -> byte (i * 131 + size))

        if
            singleChain.Invoke(0x5A5A5A5Au, ReadOnlySpan data)
            <> engine.Invoke(0x5A5A5A5Au, ReadOnlySpan data)
        then
            failwith $"the engine and one chain differ at {size} bytes"

    if hashingOneShot.Invoke(0u, ReadOnlySpan digits) <> whole then
        failwith "System.IO.Hashing check value"

    if hashingChained.Invoke(first, ReadOnlySpan(digits, 4, 5)) <> whole then
        failwith "System.IO.Hashing chained"

    running.Reset()
    running.Append(ReadOnlySpan(digits, 0, 4))

    if hashingRunning.Invoke(0u, ReadOnlySpan(digits, 4, 5)) <> whole then
        failwith "System.IO.Hashing running"

    printfn "check value 0x%08X from all four; chained in two pieces equals one update" whole

/// Calls per timed run: as many as fit in about 100 ms, so a slow variant cannot stall the run.
let callsFor (update: Update) (data: byte[]) =
    let clock = Stopwatch.StartNew()
    let mutable calls = 0
    let mutable crc = 0u

    while clock.ElapsedMilliseconds < 20L do
        crc <- update.Invoke(crc, ReadOnlySpan data)
        calls <- calls + 1

    max 1 (calls * 5)

let time (update: Update) (data: byte[]) (iterations: int) =
    let mutable crc = 0u
    let allocated = GC.GetAllocatedBytesForCurrentThread()
    let clock = Stopwatch.StartNew()

    for _ in 1..iterations do
        crc <- update.Invoke(crc, ReadOnlySpan data)

    let ns = clock.Elapsed.TotalNanoseconds / float iterations

    let bytes =
        float (GC.GetAllocatedBytesForCurrentThread() - allocated) / float iterations

    ns, bytes, crc

let variants =
    [
        "the engine (lanes, fold from 256 B)", engine
        "one chain (the engine before striping)", singleChain
        "System.IO.Hashing, chained (drop-in)", hashingChained
        "System.IO.Hashing, running instance", hashingRunning
        "System.IO.Hashing, one-shot (crc 0)", hashingOneShot
    ]

check ()
let rounds = 5

for size in [ 100; 128; 1024; 4096 ] do
    let data = Array.init size (fun i -> byte (i * 31 + 7))
    // Warm up every variant (tiered JIT) before any is timed, and size each one's runs.
    let calls =
        variants
        |> List.map (fun (name, v) ->
            callsFor v data |> ignore
            name, callsFor v data)
        |> dict

    let best = Collections.Generic.Dictionary<string, float * float>()

    for _ in 1..rounds do
        for name, v in variants do
            let ns, alloc, _ = time v data calls[name]

            match best.TryGetValue name with
            | true, (b, _) when b <= ns -> ()
            | _ -> best[name] <- (ns, alloc)

    let baseNs = fst best["the engine (lanes, fold from 256 B)"]
    printfn "\n%d B input, best of %d interleaved rounds of ~100 ms each:" size rounds

    for name, _ in variants do
        let ns, alloc = best[name]

        printfn
            "  %-38s %8.1f ns/call %8.0f MB/s %6.2fx engine  %5.0f B allocated/call"
            name
            ns
            (float size / ns * 1000.0)
            (baseNs / ns)
            alloc
