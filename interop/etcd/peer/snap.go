package main

// `etcd-peer snap-save DIR SPEC`, `snap-load DIR [WALDIR]` and `snap-read FILE`: etcd 3.4's
// own snap package (etcdserver/api/snap) writing and reading member/snap/*.snap files, so
// that Wal.Snap can be held against it.

import (
	"encoding/json"
	"io"

	"go.etcd.io/etcd/etcdserver/api/snap"
	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
)

// SnapJSON is a raftpb.Snapshot: index, term, membership and data (base64). It is both what
// snap-save takes and what snap-load and snap-read print (with error).
type SnapJSON struct {
	Index          uint64   `json:"index"`
	Term           uint64   `json:"term"`
	Voters         []uint64 `json:"voters"`
	Learners       []uint64 `json:"learners"`
	VotersOutgoing []uint64 `json:"votersOutgoing"`
	LearnersNext   []uint64 `json:"learnersNext"`
	AutoLeave      bool     `json:"autoLeave"`
	Data           []byte   `json:"data"`
	Error          *string  `json:"error"`
}

// snapKind names a snap error the way Wal.Core's WalErrorKind does (ErrNoSnapshot as NoSnapshot).
func snapKind(err error) string {
	switch {
	case err == snap.ErrNoSnapshot:
		return "NoSnapshot"
	case err == snap.ErrEmptySnapshot:
		return "CorruptRecord"
	case err == snap.ErrCRCMismatch:
		return "CrcMismatch"
	case err == io.ErrUnexpectedEOF:
		// A truncated snappb or raftpb message: gogo's verdict; Google.Protobuf's is a parse error.
		return "CorruptRecord"
	default:
		return kind(err)
	}
}

func snapOutcome(s *raftpb.Snapshot, err error) SnapJSON {
	if err != nil {
		k := snapKind(err)
		return SnapJSON{Error: &k}
	}
	cs := s.Metadata.ConfState
	return SnapJSON{
		Index: s.Metadata.Index, Term: s.Metadata.Term,
		Voters: cs.Voters, Learners: cs.Learners, VotersOutgoing: cs.VotersOutgoing, LearnersNext: cs.LearnersNext,
		AutoLeave: cs.AutoLeave, Data: s.Data,
	}
}

// snapSave writes one snapshot with Snapshotter.SaveSnap.
func snapSave(dir string, spec string) {
	var in SnapJSON
	if err := json.Unmarshal([]byte(spec), &in); err != nil {
		fail("snap-save: %v", err)
	}
	s := raftpb.Snapshot{
		Data: nilIfEmpty(in.Data),
		Metadata: raftpb.SnapshotMetadata{
			Index: in.Index, Term: in.Term,
			ConfState: raftpb.ConfState{
				Voters: in.Voters, Learners: in.Learners, VotersOutgoing: in.VotersOutgoing,
				LearnersNext: in.LearnersNext, AutoLeave: in.AutoLeave,
			},
		},
	}
	if err := snap.New(lg, dir).SaveSnap(s); err != nil {
		fail("snap-save: %v", err)
	}
}

// snapLoad is Snapshotter.Load, or LoadNewestAvailable with the WAL's ValidSnapshotEntries
// when a WAL directory is given; both rename broken files *.broken.
func snapLoad(dir string, walDir string) SnapJSON {
	var s *raftpb.Snapshot
	err := safely(func() (e error) {
		if walDir == "" {
			s, e = snap.New(lg, dir).Load()
			return e
		}
		var walSnaps []walpb.Snapshot
		if walSnaps, e = wal.ValidSnapshotEntries(lg, walDir); e != nil {
			return e
		}
		s, e = snap.New(lg, dir).LoadNewestAvailable(walSnaps)
		return e
	})
	return snapOutcome(s, err)
}

// snapRead is snap.Read on one file.
func snapRead(path string) SnapJSON {
	var s *raftpb.Snapshot
	err := safely(func() (e error) { s, e = snap.Read(lg, path); return e })
	return snapOutcome(s, err)
}
