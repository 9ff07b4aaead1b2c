package main

// `etcd-peer driver [SEGMENT_BYTES]`: etcd 3.4's wal package behind the driver protocol
// (docs/driver-protocol.md), used as etcd's server uses it, so that `wal crash-test` and
// Driver.check judge etcd's own code with the model. One JSON request a line on stdin, one
// answer a line on stdout, written with a single write(2) once the request is done; logs go
// to stderr. Every failure, a panic in etcd's code included, is an ok:false answer.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
)

// failure is an answer {"ok":false,...}: Kind is the protocol's error name.
type failure struct {
	Kind    string
	Message string
}

func (f *failure) Error() string { return f.Kind + ": " + f.Message }

func badRequest(format string, args ...interface{}) error {
	return &failure{"BadRequest", fmt.Sprintf(format, args...)}
}

// request is one line from the checker, its fields kept raw until an operation asks for them,
// so that a missing or ill-typed field is a BadRequest naming it and unknown fields are ignored.
type request map[string]json.RawMessage

func (r request) raw(name string) (json.RawMessage, error) {
	v, ok := r[name]
	if !ok {
		return nil, badRequest("the field %q is missing", name)
	}
	return v, nil
}

// number reads an unsigned integer below 2^64, written as a JSON integer or a decimal string.
func (r request) number(name string) (uint64, error) {
	v, err := r.raw(name)
	if err != nil {
		return 0, err
	}
	text := string(v)
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		text = text[1 : len(text)-1]
	}
	// ParseUint alone would take a leading '+'; the protocol allows digits only.
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, badRequest("the field %q is not an integer below 2^64", name)
		}
	}
	n, perr := strconv.ParseUint(text, 10, 64)
	if perr != nil {
		return 0, badRequest("the field %q is not an integer below 2^64", name)
	}
	return n, nil
}

func (r request) text(name string) (string, error) {
	v, err := r.raw(name)
	if err != nil {
		return "", err
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", badRequest("the field %q is not a string", name)
	}
	return s, nil
}

func (r request) bytes(name string) ([]byte, error) {
	s, err := r.text(name)
	if err != nil {
		return nil, err
	}
	b, derr := base64.StdEncoding.DecodeString(s)
	if derr != nil {
		return nil, badRequest("the field %q is not base64", name)
	}
	return b, nil
}

func (r request) hardState() (raftpb.HardState, error) {
	var st raftpb.HardState
	var err error
	if st.Term, err = r.number("term"); err != nil {
		return st, err
	}
	if st.Vote, err = r.number("vote"); err != nil {
		return st, err
	}
	st.Commit, err = r.number("commit")
	return st, err
}

func (r request) entries() ([]raftpb.Entry, error) {
	v, err := r.raw("entries")
	if err != nil {
		return nil, err
	}
	var items []request
	if json.Unmarshal(v, &items) != nil || items == nil {
		return nil, badRequest("the field \"entries\" is not an array of objects")
	}
	out := make([]raftpb.Entry, len(items))
	for i, item := range items {
		term, err := item.number("term")
		if err != nil {
			return nil, err
		}
		index, err := item.number("index")
		if err != nil {
			return nil, err
		}
		typ, err := item.number("type")
		if err != nil {
			return nil, err
		}
		if typ > 1<<31-1 {
			return nil, badRequest("entry type %d is not an EntryType", typ)
		}
		data, err := item.bytes("data")
		if err != nil {
			return nil, err
		}
		// Empty data as Go's nil, as etcd's server writes it (see nilIfEmpty).
		out[i] = raftpb.Entry{Term: term, Index: index, Type: raftpb.EntryType(typ), Data: nilIfEmpty(data)}
	}
	return out, nil
}

func (r request) snapshot(index, term string) (walpb.Snapshot, error) {
	i, err := r.number(index)
	if err != nil {
		return walpb.Snapshot{}, err
	}
	t, err := r.number(term)
	return walpb.Snapshot{Index: i, Term: t}, err
}

// guarded runs f, turning a panic in etcd's code into a Panic failure: the checker gets an
// answer, not a dead driver.
func guarded(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &failure{"Panic", fmt.Sprint(r)}
		}
	}()
	return f()
}

// driver holds the log the requests act on: nil before create or after close or a failed open.
type driver struct {
	w *wal.WAL
}

func (d *driver) open() (*wal.WAL, error) {
	if d.w == nil {
		return nil, &failure{"NotOpen", "no log is open"}
	}
	return d.w, nil
}

// closeLog closes the log if one is open; the driver forgets it whatever Close says.
func (d *driver) closeLog() error {
	if d.w == nil {
		return nil
	}
	w := d.w
	d.w = nil
	return guarded(w.Close)
}

// recover is etcd's server after a power loss (etcdserver/storage.go, readWAL): wal.Open at
// the snapshot and ReadAll; on io.ErrUnexpectedEOF close, wal.Repair, and open and read once
// more; the log stays open for appending when it was read. Where the server would stop
// (lg.Fatal), the outcome carries the error instead. With no WAL file in dir there is no log.
func (d *driver) recover(dir string, snap walpb.Snapshot) ReadAllJSON {
	if !wal.Exist(dir) {
		none := "NoLog"
		return ReadAllJSON{SnapIndex: snap.Index, SnapTerm: snap.Term, Metadata: []byte{}, Entries: []DumpEntry{}, Error: &none}
	}
	repaired := false
	for {
		var w *wal.WAL
		err := guarded(func() (e error) { w, e = wal.Open(lg, dir, snap); return e })
		if err != nil {
			return outcome(snap, nil, raftpb.HardState{}, nil, err)
		}
		md, st, ents, err := readAll(w)
		if err == nil || err == wal.ErrSnapshotNotFound {
			// etcd 3.4 opened for writing never returns ErrSnapshotNotFound (newFileEncoder
			// overwrites err); it stays here in case a later etcd does, with the log appendable.
			d.w = w
			return outcome(snap, md, st, ents, err)
		}
		guarded(w.Close)
		if repaired || err != io.ErrUnexpectedEOF {
			return outcome(snap, nil, raftpb.HardState{}, nil, err)
		}
		ok := false
		guarded(func() error { ok = wal.Repair(lg, dir); return nil })
		if !ok {
			return outcome(snap, nil, raftpb.HardState{}, nil, err)
		}
		repaired = true
	}
}

// answer runs one request; quit says the driver is to exit after answering.
func (d *driver) answer(r request) (reply interface{}, quit bool, err error) {
	op, err := r.text("op")
	if err != nil {
		return nil, false, err
	}
	done := map[string]bool{"ok": true}
	switch op {
	case "hello":
		// Save only appends; ReadAll applies raft's overwrite rule, so overwrites are etcd's too.
		return struct {
			Ok       bool     `json:"ok"`
			Name     string   `json:"name"`
			Supports []string `json:"supports"`
		}{true, "etcd 3.4 wal", []string{"overwrite", "snapshot", "install", "release", "sync"}}, false, nil
	case "create":
		dir, err := r.text("dir")
		if err != nil {
			return nil, false, err
		}
		md, err := r.bytes("metadata")
		if err != nil {
			return nil, false, err
		}
		if err := d.closeLog(); err != nil {
			return nil, false, err
		}
		var w *wal.WAL
		if err := guarded(func() (e error) { w, e = wal.Create(lg, dir, nilIfEmpty(md)); return e }); err != nil {
			return nil, false, err
		}
		d.w = w
		return done, false, nil
	case "save":
		st, err := r.hardState()
		if err != nil {
			return nil, false, err
		}
		ents, err := r.entries()
		if err != nil {
			return nil, false, err
		}
		w, err := d.open()
		if err != nil {
			return nil, false, err
		}
		return done, false, guarded(func() error { return w.Save(st, ents) })
	case "snapshot":
		snap, err := r.snapshot("index", "term")
		if err != nil {
			return nil, false, err
		}
		w, err := d.open()
		if err != nil {
			return nil, false, err
		}
		return done, false, guarded(func() error { return w.SaveSnapshot(snap) })
	case "sync":
		w, err := d.open()
		if err != nil {
			return nil, false, err
		}
		return done, false, guarded(w.Sync)
	case "release":
		index, err := r.number("index")
		if err != nil {
			return nil, false, err
		}
		w, err := d.open()
		if err != nil {
			return nil, false, err
		}
		return done, false, guarded(func() error { return w.ReleaseLockTo(index) })
	case "close":
		// With no log open (never created, or an open that found none) there is nothing to close.
		return done, false, d.closeLog()
	case "open":
		dir, err := r.text("dir")
		if err != nil {
			return nil, false, err
		}
		snap, err := r.snapshot("snapIndex", "snapTerm")
		if err != nil {
			return nil, false, err
		}
		if err := d.closeLog(); err != nil {
			return nil, false, err
		}
		return struct {
			Ok   bool        `json:"ok"`
			Read ReadAllJSON `json:"read"`
		}{true, d.recover(dir, snap)}, false, nil
	case "quit":
		return done, true, d.closeLog()
	default:
		return nil, false, badRequest("unknown op %q", op)
	}
}

// failureOf names an error for the answer: the driver's own failures by their kind, etcd's
// errors by kind() (Wal.Core's names), a panic in etcd's code as Panic.
func failureOf(err error) interface{} {
	message := err.Error()
	if f, ok := err.(*failure); ok {
		message = f.Message
	}
	return struct {
		Ok      bool   `json:"ok"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}{false, kind(err), message}
}

// serve answers requests until quit or the end of stdin, each answer one write(2) of one line.
func serve(in io.Reader, out *os.File) {
	d := &driver{}
	reader := bufio.NewReaderSize(in, 1<<20)
	for {
		line, rerr := reader.ReadBytes('\n')
		if len(line) == 0 && rerr != nil {
			break
		}
		var reply interface{}
		quit := false
		var r request
		if err := json.Unmarshal(line, &r); err != nil || r == nil {
			reply = failureOf(badRequest("not a JSON object: %s", strings.TrimSpace(string(line))))
		} else {
			var err error
			if reply, quit, err = d.answer(r); err != nil {
				reply = failureOf(err)
			}
		}
		b, err := json.Marshal(reply)
		if err != nil {
			b, _ = json.Marshal(failureOf(err))
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			break
		}
		if quit || rerr != nil {
			break
		}
	}
	if err := d.closeLog(); err != nil {
		fmt.Fprintf(os.Stderr, "etcd-peer driver: close at exit: %v\n", err)
	}
}
