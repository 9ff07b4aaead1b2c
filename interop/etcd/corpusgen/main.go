package main

import (
	"fmt"
	"os"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"
)

func main() {
	dir := os.Args[1]
	wal.SegmentSizeBytes = 4096
	w, err := wal.Create(zap.NewNop(), dir, []byte("node-1"))
	if err != nil {
		panic(err)
	}
	for i := uint64(1); i <= 200; i++ {
		e := raftpb.Entry{Term: 1, Index: i, Data: []byte(fmt.Sprintf("put key%d = value%d", i, i))}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: i}, []raftpb.Entry{e}); err != nil {
			panic(err)
		}
		if i%10 == 0 {
			w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: i + 1}, nil)
		}
		if i == 100 {
			w.SaveSnapshot(walpb.Snapshot{Index: 90, Term: 1})
		}
	}
	w.Close()
	r, err := wal.Open(zap.NewNop(), dir, walpb.Snapshot{Index: 90, Term: 1})
	if err != nil {
		panic(err)
	}
	_, st, ents, err := r.ReadAll()
	fmt.Println("go:", st, len(ents), err)
	r.Close()
}
