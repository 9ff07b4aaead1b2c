using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Wal.Interop;

/// <summary>
/// The driver protocol (docs/driver-protocol.md) over an <see cref="IRecordStore"/>: one JSON request a line
/// on stdin, exactly one JSON answer a line on stdout, flushed before the next request is read.
/// Raft's records go into the store's log in the order etcd writes them (create: metadata, then
/// the 0/0 snapshot marker; save: the entries, then the hard state unless empty), and the log is
/// committed wherever raft's contract needs durability: create; a save with entries, or whose
/// term or vote differs from the last hard state known (saved, or read back by open);
/// snapshot, sync and close always. Open recovers with the library's own recovery, then applies
/// <see cref="ReadAll"/>'s rules to what it gives back. Release answers ok and does nothing: the
/// records stay in one log, and nothing readable may change. Every exception becomes a failure
/// answer, never a dead process.
/// </summary>
public sealed class ProtocolServer : IDisposable
{
    private const string Ok = "{\"ok\":true}";

    private readonly IRecordStore store;
    private readonly ArrayBufferWriter<byte> scratch = new();
    private readonly bool syncDirectories;
    private IRecordLog? log;
    private string logDir = "";
    private ulong knownTerm;
    private ulong knownVote;

    /// <summary>A server over <paramref name="store"/>; nothing is open yet.</summary>
    /// <param name="store">The library behind the driver.</param>
    /// <param name="syncDirectories">Whether every commit is followed by an fsync of the log's directory tree (<see cref="DirectorySync"/>).</param>
    public ProtocolServer(IRecordStore store, bool syncDirectories = false)
    {
        this.store = store;
        this.syncDirectories = syncDirectories;
    }

    /// <summary>Serves requests from <paramref name="input"/> until <c>quit</c> or the end of input.</summary>
    /// <param name="input">The requests, one a line.</param>
    /// <param name="output">Where the answers go, one a line, each flushed.</param>
    public void Serve(TextReader input, TextWriter output)
    {
        while (input.ReadLine() is { } line)
        {
            var (reply, quit) = Answer(line);
            output.Write(reply);
            output.Write('\n');
            output.Flush();

            if (quit)
            {
                return;
            }
        }
    }

    /// <summary>Serves stdin and stdout; returns the exit status (0).</summary>
    /// <param name="store">The library behind the driver.</param>
    /// <returns>0.</returns>
    /// <param name="syncDirectories">Whether every commit is followed by an fsync of the log's directory tree.</param>
    public static int Run(IRecordStore store, bool syncDirectories = false)
    {
        using var server = new ProtocolServer(store, syncDirectories);
        using var output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
        server.Serve(Console.In, output);
        return 0;
    }

    /// <inheritdoc/>
    public void Dispose() => CloseLog(commit: true);

    private (string Reply, bool Quit) Answer(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return Dispatch(doc.RootElement);
        }
        catch (BadRequestException e)
        {
            return (Failure("BadRequest", e.Message), false);
        }
        catch (JsonException e)
        {
            return (Failure("BadRequest", $"not JSON: {e.Message}"), false);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(e);
            return (Failure(e.GetType().Name, e.Message), false);
        }
    }

    private (string Reply, bool Quit) Dispatch(JsonElement request)
    {
        switch (Text(request, "op"))
        {
            case "hello":
                return ($"{{\"ok\":true,\"name\":{JsonSerializer.Serialize(store.Name)},\"supports\":[\"overwrite\",\"snapshot\",\"install\",\"release\",\"sync\"]}}", false);
            case "create":
                Create(Text(request, "dir"), Bytes(request, "metadata"));
                return (Ok, false);
            case "save":
                Save(request);
                return (Ok, false);
            case "snapshot":
                Append(RaftRecord.OfSnapshot(Number(request, "index"), Number(request, "term")));
                Commit(Current());
                return (Ok, false);
            case "sync":
                Commit(Current());
                return (Ok, false);
            case "release":
                Number(request, "index");
                Current();
                return (Ok, false);
            case "close":
                Current();
                CloseLog(commit: true);
                return (Ok, false);
            case "open":
                return (Open(Text(request, "dir"), Number(request, "snapIndex"), Number(request, "snapTerm")), false);
            case "quit":
                CloseLog(commit: true);
                return (Ok, true);
            case var other:
                throw new BadRequestException($"unknown op \"{other}\"");
        }
    }

    private void Commit(IRecordLog committed)
    {
        committed.Commit();
        if (syncDirectories)
        {
            DirectorySync.Tree(logDir);
        }
    }

    private void Create(string dir, byte[] metadata)
    {
        CloseLog(commit: true);
        logDir = dir;
        var opened = store.Open(dir, static _ => { });
        log = opened;
        knownTerm = 0;
        knownVote = 0;
        Append(RaftRecord.OfMetadata(metadata));
        Append(RaftRecord.OfSnapshot(0, 0));
        Commit(opened);
    }

    private void Save(JsonElement request)
    {
        var wal = Current();
        var term = Number(request, "term");
        var vote = Number(request, "vote");
        var commit = Number(request, "commit");
        var entries = Field(request, "entries");

        if (entries.ValueKind != JsonValueKind.Array)
        {
            throw new BadRequestException("\"entries\" is not an array");
        }

        var any = false;

        foreach (var e in entries.EnumerateArray())
        {
            Append(RaftRecord.OfEntry(Number(e, "term"), Number(e, "index"), Number(e, "type"), Bytes(e, "data")));
            any = true;
        }

        var empty = term == 0 && vote == 0 && commit == 0;
        var mustSync = any || (!empty && (term != knownTerm || vote != knownVote));

        if (!empty)
        {
            Append(RaftRecord.OfHardState(term, vote, commit));
            knownTerm = term;
            knownVote = vote;
        }

        if (mustSync)
        {
            Commit(wal);
        }
    }

    private string Open(string dir, ulong snapIndex, ulong snapTerm)
    {
        CloseLog(commit: true);
        logDir = dir;
        var read = new ReadAll(snapIndex, snapTerm);

        // No directory, or one holding nothing: a power loss before create was durable. The
        // library is not asked to open it, so it creates nothing there.
        if (!Directory.Exists(dir) || !Directory.EnumerateFileSystemEntries(dir).Any())
        {
            return Read(snapIndex, snapTerm, read, "NoLog");
        }

        IRecordLog opened;

        try
        {
            opened = store.Open(dir, bytes => read.Add(RecordCodec.Decode(bytes)));
        }
        catch (Exception e)
        {
            // The library could not recover the log: a read error, judged by the model.
            Console.Error.WriteLine(e);
            return Read(snapIndex, snapTerm, new ReadAll(snapIndex, snapTerm), e.GetType().Name);
        }

        if (read.Records == 0)
        {
            // The library recovered an empty log: none of create's records were committed.
            opened.Dispose();
            return Read(snapIndex, snapTerm, new ReadAll(snapIndex, snapTerm), "NoLog");
        }

        log = opened;
        knownTerm = read.HardState.Term;
        knownVote = read.HardState.Vote;
        return Read(snapIndex, snapTerm, read, read.Error);
    }

    private IRecordLog Current() => log ?? throw new BadRequestException("no log is open");

    private void Append(in RaftRecord record)
    {
        scratch.ResetWrittenCount();
        RecordCodec.Encode(record, scratch);
        Current().Append(scratch.WrittenSpan);
    }

    private void CloseLog(bool commit)
    {
        if (log is { } open)
        {
            log = null;

            try
            {
                if (commit)
                {
                    Commit(open);
                }
            }
            finally
            {
                open.Dispose();
            }
        }
    }

    private static string Read(ulong snapIndex, ulong snapTerm, ReadAll read, string? error)
    {
        using var stream = new MemoryStream();

        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteBoolean("ok", true);
            w.WriteStartObject("read");
            w.WriteNumber("snapIndex", snapIndex);
            w.WriteNumber("snapTerm", snapTerm);
            var contents = error is null or "SnapshotNotFound";
            w.WriteBase64String("metadata", contents ? read.Metadata.Span : []);
            w.WriteNumber("term", contents ? read.HardState.Term : 0);
            w.WriteNumber("vote", contents ? read.HardState.Vote : 0);
            w.WriteNumber("commit", contents ? read.HardState.Commit : 0);
            w.WriteStartArray("entries");

            if (contents)
            {
                foreach (var e in read.Entries)
                {
                    w.WriteStartObject();
                    w.WriteNumber("term", e.Term);
                    w.WriteNumber("index", e.Index);
                    w.WriteNumber("type", e.EntryType);
                    w.WriteBase64String("data", e.Data.Span);
                    w.WriteEndObject();
                }
            }

            w.WriteEndArray();

            if (error is null)
            {
                w.WriteNull("error");
            }
            else
            {
                w.WriteString("error", error);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string Failure(string kind, string message)
    {
        using var stream = new MemoryStream();

        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteBoolean("ok", false);
            w.WriteString("error", kind);
            w.WriteString("message", message.ReplaceLineEndings(" "));
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static JsonElement Field(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v)
            ? v
            : throw new BadRequestException($"the field \"{name}\" is missing");

    private static string Text(JsonElement e, string name)
    {
        var v = Field(e, name);
        return v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new BadRequestException($"the field \"{name}\" is not a string");
    }

    private static byte[] Bytes(JsonElement e, string name) =>
        Field(e, name) is { ValueKind: JsonValueKind.String } v && v.TryGetBytesFromBase64(out var bytes)
            ? bytes
            : throw new BadRequestException($"the field \"{name}\" is not base64");

    private static ulong Number(JsonElement e, string name)
    {
        var v = Field(e, name);

        if (v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out var n))
        {
            return n;
        }

        if (v.ValueKind == JsonValueKind.String
            && v.GetString() is { Length: > 0 } s
            && s.All(char.IsAsciiDigit)
            && ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            return parsed;
        }

        throw new BadRequestException($"the field \"{name}\" is not an integer below 2^64");
    }
}
