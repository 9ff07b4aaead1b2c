// Command etcd-peer drives etcd's own wal package (3.4, from Debian's
// golang-etcd-server-dev) so that the .NET engine can be checked against it.
//
//	etcd-peer write DIR SCRIPT       run an operation script (JSON), writing a WAL in DIR;
//	                                 each reopen or repair prints ReadAll as one JSON line
//	etcd-peer read DIR [I:T] [write] ReadAll at snapshot I:T (default 0:0) as one JSON line;
//	                                 "write" opens with wal.Open (which zeroes a torn tail)
//	                                 instead of wal.OpenForRead
//	etcd-peer repair DIR             wal.Repair; prints {"repaired":true|false}
//	etcd-peer verify DIR [I:T]       wal.Verify; prints {"error":null|"Kind"}
//	etcd-peer snapshots DIR          wal.ValidSnapshotEntries as JSON
//	etcd-peer bench DIR PER SAVES [BYTES [WARMUP [scan]]]
//	                                 Create, WARMUP (50) warm-up Saves, then SAVES timed Saves of PER
//	                                 BYTES-byte (100) entries, each fdatasynced as MustSync says; with
//	                                 "scan", OpenForRead and ReadAll after: bench.go
//	etcd-peer driver [SEGMENT_BYTES] the driver protocol (docs/driver-protocol.md) on stdin/stdout:
//	                                 create, save, snapshot, sync, release, close, and open as
//	                                 etcd's server recovers (Open, ReadAll, Repair once on a torn tail)
//	etcd-peer records [KIND] -       for each line of hex on stdin, gogo's Unmarshal verdict for KIND:
//	                                 record (walpb.Record, the default): "ok TYPE CRC DATAHEX";
//	                                 entry (raftpb.Entry): "ok TERM INDEX TYPE DATAHEX";
//	                                 state (raftpb.HardState): "ok TERM VOTE COMMIT";
//	                                 snapshot (walpb.Snapshot): "ok INDEX TERM";
//	                                 or "truncated" (io.ErrUnexpectedEOF) or "invalid"
//	etcd-peer snap-save DIR SPEC     snap.Snapshotter.SaveSnap of a snapshot given as JSON (snap.go)
//	etcd-peer snap-load DIR [WALDIR] Snapshotter.Load, or LoadNewestAvailable with the WAL's
//	                                 ValidSnapshotEntries; the snapshot or the error as JSON
//	etcd-peer snap-read FILE         snap.Read of one file as JSON
//
// ReadAll's JSON is the schema `wal dump --json` prints (see interop/etcd/README.md).
// Errors are reported by kind, named as Wal.Core's WalErrorKind names them, so the
// two implementations can be compared without matching message texts.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"
)

// Entry is a raft entry as the JSON schema writes it; []byte marshals as base64.
type Entry struct {
	Term  uint64 `json:"term"`
	Index uint64 `json:"index"`
	Type  int32  `json:"type"`
	Data  []byte `json:"data"`
}

// DumpEntry is an entry of ReadAll's outcome: its term and index are decimal strings, which no
// JSON reader rounds (jq 1.6 and JavaScript keep 53 bits of a number).
type DumpEntry struct {
	Term  uint64 `json:"term,string"`
	Index uint64 `json:"index,string"`
	Type  int32  `json:"type"`
	Data  []byte `json:"data"`
}

// ReadAllJSON is ReadAll's outcome. Field order is the schema's order; the 64-bit values are
// decimal strings, as `wal dump --json` writes them.
type ReadAllJSON struct {
	SnapIndex uint64      `json:"snapIndex,string"`
	SnapTerm  uint64      `json:"snapTerm,string"`
	Metadata  []byte      `json:"metadata"`
	Term      uint64      `json:"term,string"`
	Vote      uint64      `json:"vote,string"`
	Commit    uint64      `json:"commit,string"`
	Entries   []DumpEntry `json:"entries"`
	Error     *string     `json:"error"`
}

// Op is one step of a script. Unused fields stay zero.
type Op struct {
	Op        string  `json:"op"`
	Metadata  []byte  `json:"metadata"`
	Term      uint64  `json:"term"`
	Vote      uint64  `json:"vote"`
	Commit    uint64  `json:"commit"`
	Entries   []Entry `json:"entries"`
	Index     uint64  `json:"index"`
	SnapIndex uint64  `json:"snapIndex"`
	SnapTerm  uint64  `json:"snapTerm"`
	// Damage to a closed log (truncate, zero, flip): File counts segments from the end (-1 the last).
	File   int   `json:"file"`
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	Bit    uint  `json:"bit"`
}

// Script is what `write` runs: the segment size, then the operations in order. Corpus
// scripts also list the snapshots to read at ("reads"), which the peer does not use.
type Script struct {
	SegmentSize int64 `json:"segmentSize"`
	Ops         []Op  `json:"ops"`
}

var lg = zap.NewNop()

// kind names an etcd error the way Wal.Core's WalErrorKind does.
func kind(err error) string {
	switch {
	case err == nil:
		return ""
	case isFailure(err):
		return err.(*failure).Kind
	case err == wal.ErrSnapshotNotFound:
		return "SnapshotNotFound"
	case err == wal.ErrSnapshotMismatch:
		return "SnapshotMismatch"
	case err == wal.ErrMetadataConflict:
		return "MetadataConflict"
	case err == wal.ErrCRCMismatch, err == walpb.ErrCRCMismatch:
		// The decoder's check returns walpb's error; ReadAll's crc-record check returns wal's.
		return "CrcMismatch"
	case err == wal.ErrFileNotFound:
		return "FileNotFound"
	case err == wal.ErrSliceOutOfRange:
		return "SliceOutOfRange"
	case err == wal.ErrMaxWALEntrySizeLimitExceeded:
		return "RecordTooLarge"
	case err == io.ErrUnexpectedEOF:
		return "UnexpectedEof"
	case err == wal.ErrDecoderNotFound:
		return "InvalidState"
	case strings.HasPrefix(err.Error(), "proto:"), strings.HasPrefix(err.Error(), "unexpected block type"):
		// gogo-protobuf's unmarshal errors and unknown record types: the record is not one etcd wrote.
		return "CorruptRecord"
	case errors.Is(err, os.ErrNotExist):
		return "FileNotFound"
	default:
		fmt.Fprintf(os.Stderr, "etcd-peer: unclassified error: %v\n", err)
		return "Failed"
	}
}

func isFailure(err error) bool {
	_, ok := err.(*failure)
	return ok
}

func errorField(err error) *string {
	if err == nil {
		return nil
	}
	k := kind(err)
	return &k
}

func parseSnap(s string) walpb.Snapshot {
	parts := strings.SplitN(s, ":", 2)
	if len(parts) != 2 {
		fail("snapshot must be INDEX:TERM, not %q", s)
	}
	i, err1 := strconv.ParseUint(parts[0], 10, 64)
	t, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		fail("snapshot must be INDEX:TERM, not %q", s)
	}
	return walpb.Snapshot{Index: i, Term: t}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd-peer: "+format+"\n", args...)
	os.Exit(2)
}

func printJSON(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println(string(b))
}

// readAll runs ReadAll on an opened WAL. A record etcd cannot unmarshal after its CRC
// matched makes etcd panic (pbutil.MustUnmarshal); the peer reports it as CorruptRecord.
func readAll(w *wal.WAL) (md []byte, st raftpb.HardState, ents []raftpb.Entry, err error) {
	err = safely(func() (e error) { md, st, ents, e = w.ReadAll(); return e })
	return md, st, ents, err
}

// safely runs f, turning a panic into an error: etcd panics (pbutil.MustUnmarshal) on a
// record whose CRC matched but whose data is not what its type says, as after a flip of the
// type byte, which the CRC does not cover.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("proto: panic: %v", r)
		}
	}()
	return f()
}

// outcome shapes ReadAll's results as the schema does: after any error other than
// SnapshotNotFound (which etcd returns together with what it read) the contents are empty.
func outcome(snap walpb.Snapshot, md []byte, st raftpb.HardState, ents []raftpb.Entry, err error) ReadAllJSON {
	out := ReadAllJSON{SnapIndex: snap.Index, SnapTerm: snap.Term, Metadata: []byte{}, Entries: []DumpEntry{}, Error: errorField(err)}
	if err != nil && err != wal.ErrSnapshotNotFound {
		return out
	}
	if md != nil {
		out.Metadata = md
	}
	out.Term, out.Vote, out.Commit = st.Term, st.Vote, st.Commit
	for _, e := range ents {
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		out.Entries = append(out.Entries, DumpEntry{Term: e.Term, Index: e.Index, Type: int32(e.Type), Data: data})
	}
	return out
}

func read(dir string, snap walpb.Snapshot, write bool) ReadAllJSON {
	var w *wal.WAL
	var err error
	if write {
		w, err = wal.Open(lg, dir, snap)
	} else {
		w, err = wal.OpenForRead(lg, dir, snap)
	}
	if err != nil {
		return outcome(snap, nil, raftpb.HardState{}, nil, err)
	}
	defer w.Close()
	md, st, ents, err := readAll(w)
	return outcome(snap, md, st, ents, err)
}

// nilIfEmpty gives Go's nil for empty bytes: gogo-protobuf writes an empty non-nil []byte as a
// field of length 0 but leaves a nil one out, and etcd's server never writes empty non-nil
// payloads (raft's empty entries have nil data). .NET has one empty, which the engine writes as nil.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// damage changes a closed log's segment as a crash or a bad disk might, for corpus cases.
func damage(dir string, op Op) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(names) == 0 {
		return fmt.Errorf("no segments to damage in %s", dir)
	}
	sort.Strings(names)
	i := len(names) + op.File
	if op.File >= 0 {
		i = op.File
	}
	if i < 0 || i >= len(names) {
		return fmt.Errorf("no segment %d", op.File)
	}
	name := names[i]
	if op.Op == "truncate" {
		return os.Truncate(name, op.Offset)
	}
	b, err := ioutil.ReadFile(name)
	if err != nil {
		return err
	}
	if op.Offset < 0 || op.Offset+op.Length > int64(len(b)) || (op.Op == "flip" && op.Offset >= int64(len(b))) {
		return fmt.Errorf("offset %d is outside %s", op.Offset, name)
	}
	if op.Op == "zero" {
		for j := op.Offset; j < op.Offset+op.Length; j++ {
			b[j] = 0
		}
	} else {
		b[op.Offset] ^= 1 << (op.Bit % 8)
	}
	return ioutil.WriteFile(name, b, 0600)
}

func toRaft(es []Entry) []raftpb.Entry {
	out := make([]raftpb.Entry, len(es))
	for i, e := range es {
		out[i] = raftpb.Entry{Term: e.Term, Index: e.Index, Type: raftpb.EntryType(e.Type), Data: nilIfEmpty(e.Data)}
	}
	return out
}

// write runs a script. Each reopen prints ReadAll's outcome, so a caller can compare
// what etcd read back mid-script too. A ReadAll that fails ends the script there (the log
// cannot append after it); any other failing operation stops the peer with exit code 2.
func write(dir string, script Script) {
	if script.SegmentSize > 0 {
		wal.SegmentSizeBytes = script.SegmentSize
	}
	var w *wal.WAL
	check := func(i int, op Op, err error) {
		if err != nil {
			fail("op %d (%s): %v", i, op.Op, err)
		}
	}
	for i, op := range script.Ops {
		var err error
		switch op.Op {
		case "create":
			w, err = wal.Create(lg, dir, nilIfEmpty(op.Metadata))
		case "save":
			err = w.Save(raftpb.HardState{Term: op.Term, Vote: op.Vote, Commit: op.Commit}, toRaft(op.Entries))
		case "snapshot":
			err = w.SaveSnapshot(walpb.Snapshot{Index: op.Index, Term: op.Term})
		case "sync":
			err = w.Sync()
		case "releaseLockTo":
			err = w.ReleaseLockTo(op.Index)
		case "close":
			err = w.Close()
			w = nil
		case "repair":
			// Close, Repair (which finds nothing to cut in a cleanly closed log), then reopen at 0.
			if w != nil {
				check(i, op, w.Close())
			}
			if !wal.Repair(lg, dir) {
				fail("op %d (repair): wal.Repair refused", i)
			}
			op.SnapIndex, op.SnapTerm = 0, 0
			fallthrough
		case "reopen":
			if w != nil && op.Op == "reopen" {
				check(i, op, w.Close())
			}
			snap := walpb.Snapshot{Index: op.SnapIndex, Term: op.SnapTerm}
			w, err = wal.Open(lg, dir, snap)
			check(i, op, err)
			md, st, ents, rerr := readAll(w)
			printJSON(outcome(snap, md, st, ents, rerr))
			if rerr != nil && rerr != wal.ErrSnapshotNotFound {
				// The log cannot go on after a failed ReadAll; what it read is the script's last word.
				w.Close()
				return
			}
		case "truncate", "zero", "flip":
			if w != nil {
				check(i, op, w.Close())
				w = nil
			}
			err = damage(dir, op)
		default:
			fail("op %d: unknown operation %q", i, op.Op)
		}
		check(i, op, err)
	}
	if w != nil {
		check(len(script.Ops), Op{Op: "close"}, w.Close())
	}
}

// records runs gogo-protobuf's Unmarshal of one message kind over hex lines, so its verdicts
// can be compared with the engine's decoders: "record" is walpb.Record, which etcd's decoder
// calls on every frame; "entry" and "state" are raftpb.Entry and raftpb.HardState, which
// ReadAll calls on the data of entry and state records; "snapshot" is walpb.Snapshot, which
// ReadAll calls on the data of snapshot records.
func records(kind string, in io.Reader, out io.Writer) {
	var decode func(raw []byte) (string, error)
	switch kind {
	case "record":
		decode = func(raw []byte) (string, error) {
			var rec walpb.Record
			err := rec.Unmarshal(raw)
			return fmt.Sprintf("ok %d %d %s", rec.Type, rec.Crc, hex.EncodeToString(rec.Data)), err
		}
	case "entry":
		decode = func(raw []byte) (string, error) {
			var e raftpb.Entry
			err := e.Unmarshal(raw)
			return fmt.Sprintf("ok %d %d %d %s", e.Term, e.Index, int32(e.Type), hex.EncodeToString(e.Data)), err
		}
	case "state":
		decode = func(raw []byte) (string, error) {
			var st raftpb.HardState
			err := st.Unmarshal(raw)
			return fmt.Sprintf("ok %d %d %d", st.Term, st.Vote, st.Commit), err
		}
	case "snapshot":
		decode = func(raw []byte) (string, error) {
			var snap walpb.Snapshot
			err := snap.Unmarshal(raw)
			return fmt.Sprintf("ok %d %d", snap.Index, snap.Term), err
		}
	default:
		fail("usage: etcd-peer records [record|entry|state|snapshot] -")
	}
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 1<<26)
	w := bufio.NewWriter(out)
	defer w.Flush()
	for scanner.Scan() {
		raw, err := hex.DecodeString(strings.TrimSpace(scanner.Text()))
		if err != nil {
			fail("records: %v", err)
		}
		verdict := func() (v string) {
			defer func() {
				if recover() != nil {
					v = "invalid"
				}
			}()
			switch ok, err := decode(raw); {
			case err == nil:
				return ok
			case err == io.ErrUnexpectedEOF:
				return "truncated"
			default:
				return "invalid"
			}
		}()
		fmt.Fprintln(w, verdict)
	}
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "driver" {
		if len(os.Args) > 3 {
			fail("usage: etcd-peer driver [SEGMENT_BYTES]")
		}
		if len(os.Args) == 3 {
			size, err := strconv.ParseInt(os.Args[2], 10, 64)
			if err != nil || size < 1 {
				fail("driver: SEGMENT_BYTES must be a positive number")
			}
			wal.SegmentSizeBytes = size
		}
		serve(os.Stdin, os.Stdout)
		return
	}
	if len(os.Args) < 3 {
		fail("usage: etcd-peer write|read|repair|verify|snapshots|bench|snap-save|snap-load DIR [...], snap-read FILE, records [record|entry|state|snapshot] -, or driver [SEGMENT_BYTES]")
	}
	cmd, dir, rest := os.Args[1], os.Args[2], os.Args[3:]
	snap := walpb.Snapshot{}
	switch cmd {
	case "write":
		if len(rest) != 1 {
			fail("usage: etcd-peer write DIR SCRIPT")
		}
		raw, err := ioutil.ReadFile(rest[0])
		if err != nil {
			fail("%v", err)
		}
		var script Script
		if err := json.Unmarshal(raw, &script); err != nil {
			fail("script: %v", err)
		}
		write(dir, script)
	case "read":
		writeMode := false
		for _, a := range rest {
			if a == "write" {
				writeMode = true
			} else {
				snap = parseSnap(a)
			}
		}
		printJSON(read(dir, snap, writeMode))
	case "repair":
		repaired := false
		safely(func() error { repaired = wal.Repair(lg, dir); return nil })
		printJSON(map[string]bool{"repaired": repaired})
	case "verify":
		if len(rest) == 1 {
			snap = parseSnap(rest[0])
		}
		err := safely(func() error { return wal.Verify(lg, dir, snap) })
		printJSON(map[string]*string{"error": errorField(err)})
	case "bench":
		printJSON(benchCommand(dir, rest))
	case "records":
		// "records -" reads walpb.Records; "records entry -" and "records state -" the raft messages.
		kind := "record"
		if dir != "-" {
			kind = dir
		}
		records(kind, os.Stdin, os.Stdout)
	case "snap-save":
		if len(rest) != 1 {
			fail("usage: etcd-peer snap-save DIR SPEC")
		}
		snapSave(dir, rest[0])
	case "snap-load":
		walDir := ""
		if len(rest) == 1 {
			walDir = rest[0]
		}
		printJSON(snapLoad(dir, walDir))
	case "snap-read":
		printJSON(snapRead(dir))
	case "snapshots":
		var snaps []walpb.Snapshot
		err := safely(func() (e error) { snaps, e = wal.ValidSnapshotEntries(lg, dir); return e })
		if err != nil {
			printJSON(map[string]interface{}{"error": errorField(err)})
			return
		}
		type snapJSON struct {
			Index uint64 `json:"index"`
			Term  uint64 `json:"term"`
		}
		out := make([]snapJSON, len(snaps))
		for i, s := range snaps {
			out[i] = snapJSON{s.Index, s.Term}
		}
		printJSON(map[string]interface{}{"snapshots": out, "error": nil})
	default:
		fail("unknown command %q", cmd)
	}
}
