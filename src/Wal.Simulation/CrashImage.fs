// What a power cut leaves of a disk state: the crash images a real disk may produce, chosen at
// random or enumerated within bounds as CrashMonkey does, and bit rot in durable bytes.
namespace Wal.Simulation

open System

/// What survives of one file's pending changes.
type FileFate =
    /// The oldest `Kept` changes survive whole; of the next one, when it is a write, the first
    /// `TornSectors` sectors (counted on the file's sector grid) survive too.
    | KeptPrefix of kept: int * tornSectors: int
    /// Each pending write's sectors survive or not on their own (the disk reorders); the
    /// length changes keep their order. `Seed` chooses.
    | KeptSectors of seed: int

/// How a power cut treats lost sectors.
type LostSectors =
    /// A lost sector keeps what it held before the lost write (zeros, for preallocated space).
    | OldContents
    /// A lost sector of a pending write reads as garbage (the stress mode).
    | Garbage of seed: int

/// One crash image: what survives of the namespace log and of each file.
type CrashImage =
    {
        NamespaceKept: int
        Files: Map<int, FileFate>
        Lost: LostSectors
    }

/// Crash images of disk states, and the disks they leave.
[<RequireQualifiedAccess>]
module CrashImage =
    /// The sector size writes tear at.
    [<Literal>]
    let SectorBytes = 512L

    let private sectorsOf (offset: int64) (length: int) =
        if length = 0 then
            []
        else
            let first = offset / SectorBytes
            let last = (offset + int64 length - 1L) / SectorBytes
            [ first..last ]

    /// Applies a write's bytes in the given sectors only.
    let private writeSectors (c: Content) (offset: int64) (data: byte[]) (keep: int64 -> bool) =
        sectorsOf offset data.Length
        |> List.fold
            (fun c sector ->
                if keep sector then
                    let start = max offset (sector * SectorBytes)
                    let stop = min (offset + int64 data.Length) ((sector + 1L) * SectorBytes)
                    Content.write c start (ReadOnlySpan(data, int (start - offset), int (stop - start)))
                else
                    c)
            c

    /// Garbage over the bytes of lost writes, from a seed. Only the lost bytes: bytes that were
    /// durable before stay as they were, since the disk is assumed to write sectors atomically
    /// (what etcd, and most logs, assume).
    let private garble (c: Content) (lost: (int64 * int) list) (seed: int) =
        let random = Random seed

        lost
        |> List.fold
            (fun c (offset, length) ->
                let length = int (max 0L (min (int64 length) (c.Length - offset)))

                if length = 0 then
                    c
                else
                    let junk = Array.zeroCreate<byte> length
                    random.NextBytes junk
                    Content.write c offset (ReadOnlySpan junk))
            c

    /// The byte ranges of a write that fall in the given sectors.
    let private rangesIn (offset: int64) (length: int) (sectors: int64 list) =
        sectors
        |> List.map (fun sector ->
            let start = max offset (sector * SectorBytes)
            let stop = min (offset + int64 length) ((sector + 1L) * SectorBytes)
            start, int (stop - start))

    /// The contents a file has after a power cut that treats its pending changes as `fate` says.
    let survivingContent (inode: Inode) (fate: FileFate) (lost: LostSectors) =
        let pending = List.rev inode.Pending

        let wholeWrites ops =
            ops
            |> List.choose (function
                | Write(o, d) -> Some(o, d.Length)
                | Resize _ -> None)

        let content, lostRanges =
            match fate with
            | KeptPrefix(kept, torn) ->
                let kept = min kept pending.Length
                let whole = pending |> List.take kept |> List.fold Content.apply inode.Durable

                match pending |> List.skip kept with
                // A zero-length write has no sector to tear: it is kept or not like a resize.
                | Write(offset, data) :: later when data.Length > 0 ->
                    let sectors = sectorsOf offset data.Length
                    let firstSector = List.head sectors
                    let keep (s: int64) = s - firstSector < int64 torn

                    writeSectors whole offset data keep,
                    rangesIn offset data.Length (sectors |> List.filter (keep >> not))
                    @ wholeWrites later
                | rest -> whole, wholeWrites rest
            | KeptSectors seed ->
                let random = Random seed
                let mutable lostRanges = []

                let content =
                    pending
                    |> List.fold
                        (fun c op ->
                            match op with
                            | Resize _ -> Content.apply c op
                            | Write(offset, data) ->
                                let sectors = sectorsOf offset data.Length
                                let kept = sectors |> List.filter (fun _ -> random.Next 2 = 0) |> Set.ofList

                                lostRanges <-
                                    rangesIn offset data.Length (sectors |> List.filter (kept.Contains >> not))
                                    @ lostRanges

                                writeSectors c offset data kept.Contains)
                        inode.Durable

                content, lostRanges

        match lost with
        | OldContents -> content
        | Garbage seed -> garble content lostRanges seed

    /// The disk a power cut leaves, every change in it durable.
    let crash (state: DiskState) (image: CrashImage) : DiskState =
        let ns =
            state.PendingNamespace
            |> List.truncate image.NamespaceKept
            |> List.fold NamespaceOp.apply state.Durable

        let inodes =
            state.Inodes
            |> Map.map (fun id inode ->
                let fate = image.Files |> Map.tryFind id |> Option.defaultValue (KeptPrefix(0, 0))
                let c = survivingContent inode fate image.Lost

                {
                    Durable = c
                    Current = c
                    Pending = []
                })

        { state with
            Inodes = inodes
            Durable = ns
            Current = ns
            PendingNamespace = []
        }

    /// The files whose pending changes a crash image decides about.
    let undecided (state: DiskState) =
        state.Inodes |> Map.filter (fun _ i -> not i.Pending.IsEmpty)

    /// A random crash image for a state, from a seed; lost sectors read as garbage when `garbage`.
    let random (state: DiskState) (garbage: bool) (seed: int) : CrashImage =
        let random = Random seed

        let fates =
            undecided state
            |> Map.map (fun _ inode ->
                match random.Next 4 with
                | 0 -> KeptSectors(random.Next())
                | _ ->
                    let n = inode.Pending.Length
                    KeptPrefix(random.Next(n + 1), random.Next 9))

        {
            NamespaceKept = random.Next(state.PendingNamespace.Length + 1)
            Files = fates
            Lost = if garbage then Garbage(random.Next()) else OldContents
        }

    /// The crash images of a state, as CrashMonkey bounds its search. The choices are: each prefix
    /// of the namespace log; for each file, each prefix of its changes with the next write torn after
    /// 0, 1 or 2 sectors, and `reorderings` random sector subsets. When there are at most `bound`
    /// combinations, every one is returned; otherwise `bound` of them, drawn from `seed`.
    let enumerate (state: DiskState) (reorderings: int) (bound: int) (seed: int) : CrashImage list =
        let fatesOf (inode: Inode) =
            [|
                for kept in 0 .. inode.Pending.Length do
                    yield KeptPrefix(kept, 0)

                    if kept < inode.Pending.Length then
                        match List.rev inode.Pending |> List.item kept with
                        | Write(offset, data) ->
                            let sectors = (sectorsOf offset data.Length).Length

                            for torn in 1 .. min 2 (sectors - 1) do
                                yield KeptPrefix(kept, torn)
                        | Resize _ -> ()
                for r in 1..reorderings do
                    yield KeptSectors(seed + r)
            |]

        let files =
            undecided state |> Map.toList |> List.map (fun (id, inode) -> id, fatesOf inode)

        let namespaceChoices = state.PendingNamespace.Length + 1

        let total =
            files
            |> List.fold (fun acc (_, fates) -> acc * float fates.Length) (float namespaceChoices)

        let image (pick: int -> int) =
            {
                NamespaceKept = pick namespaceChoices
                Files =
                    files
                    |> List.map (fun (id, fates) -> id, fates[pick fates.Length])
                    |> Map.ofList
                Lost = OldContents
            }

        if total <= float bound then
            // Every combination, by counting in mixed radix.
            [
                for n in 0 .. int total - 1 do
                    let mutable rest = n

                    yield
                        image (fun radix ->
                            let digit = rest % radix
                            rest <- rest / radix
                            digit)
            ]
        else
            let random = Random seed
            [ for _ in 1..bound -> image random.Next ]

    /// Bit rot rather than a power cut: flips one bit of a durable file's byte, choosing file,
    /// byte and bit from a seed. Returns the rotten disk and where the bit flipped, or None when
    /// no file has a byte to flip.
    let rot (state: DiskState) (seed: int) : (DiskState * (string * int64)) option =
        let files =
            state.Durable
            |> Map.toList
            |> List.choose (function
                | path, FileNode i when state.Inodes[i].Durable.Length > 0L -> Some(path, i)
                | _ -> None)

        if files.IsEmpty then
            None
        else
            let random = Random seed
            let path, id = files[random.Next files.Length]
            let inode = state.Inodes[id]
            let c = inode.Durable
            let offset = int64 (random.NextDouble() * float c.Length) |> min (c.Length - 1L)
            let b = Array.zeroCreate<byte> 1
            Content.read c offset (Span b) |> ignore
            b[0] <- b[0] ^^^ (1uy <<< random.Next 8)
            let c = Content.write c offset (ReadOnlySpan b)

            Some(
                { state with
                    Inodes =
                        state.Inodes.Add(
                            id,
                            {
                                Durable = c
                                Current = c
                                Pending = []
                            }
                        )
                },
                (path, offset)
            )
