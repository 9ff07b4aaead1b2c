#!/usr/bin/env python3
"""A small write-ahead log in Python, written as a user of another language would write one,
behind the driver protocol (docs/driver-protocol.md) so the model can judge it.

The log is one append-only file, `<dir>/log`, of frames: a 4-byte little-endian payload length,
the payload's zlib.crc32 (4 bytes, little-endian), then the payload. A payload is a record:
metadata, an entry, a hard state or a snapshot marker. Recovery keeps the frames up to the first
one that is incomplete or fails its CRC (a torn tail) and cuts the file there; ReadAll's rules
(docs/traces.md) are then applied to the records.

    python3 naive.py                               # the correct log
    python3 naive.py --bug no-fsync-on-term-change # does not fsync a Save that only changes term/vote
    python3 naive.py --bug ack-after-fsync-error   # goes on acknowledging after a failed write or fsync

The first bug loses an acknowledged hard state on power loss; without power cuts it is invisible.
After a failed write or fsync the correct log fails closed: it refuses every later request until
the log is opened again, since the kernel may have dropped the pages the failed fsync was to make
durable (a second fsync would succeed without writing them). The second bug forgets that, which
`wal crash-test --faults` catches.
Standard library only.
"""

import base64
import json
import os
import struct
import sys
import zlib

METADATA, ENTRY, STATE, SNAPSHOT = 1, 2, 3, 4
BUGS = ("no-fsync-on-term-change", "ack-after-fsync-error")


class Refused(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def number(value, name):
    """Numbers come as JSON integers or decimal strings."""
    if isinstance(value, bool):
        raise Refused("BadRequest", f"{name} is not a number")
    if isinstance(value, int) and 0 <= value < 2**64:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) < 2**64:
        return int(value)
    raise Refused("BadRequest", f"{name} is not an integer below 2^64")


def frame(payload):
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def entry_record(term, index, kind, data):
    return struct.pack("<BQQB", ENTRY, term, index, kind) + data


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_frames(path):
    """The records of the file, and the length of its valid prefix."""
    with open(path, "rb") as f:
        data = f.read()
    records, at = [], 0
    while at + 8 <= len(data):
        length, crc = struct.unpack_from("<II", data, at)
        payload = data[at + 8 : at + 8 + length]
        if length == 0 or len(payload) < length or zlib.crc32(payload) != crc:
            break
        records.append(payload)
        at += 8 + length
    return records, at


def read_all(records, snap_index, snap_term):
    """ReadAll's rules: entries at or below the snapshot are skipped, an entry whose index is
    present replaces it and everything after it, a gap is SliceOutOfRange, differing metadata is
    MetadataConflict, a marker at the snapshot's index with another term is SnapshotMismatch,
    no marker at all is SnapshotNotFound (with the contents)."""
    metadata, state, entries, matched = None, (0, 0, 0), [], False
    for payload in records:
        kind = payload[0]
        if kind == METADATA:
            m = payload[1:]
            if metadata is not None and metadata != m:
                return "MetadataConflict", None
            metadata = m if m else None
        elif kind == ENTRY:
            term, index, etype = struct.unpack_from("<QQB", payload, 1)
            if index > snap_index:
                up = index - snap_index - 1
                if up > len(entries):
                    return "SliceOutOfRange", None
                entries = entries[:up] + [(term, index, etype, payload[18:])]
        elif kind == STATE:
            state = struct.unpack_from("<QQQ", payload, 1)
        elif kind == SNAPSHOT:
            index, term = struct.unpack_from("<QQ", payload, 1)
            if index == snap_index:
                if term != snap_term:
                    return "SnapshotMismatch", None
                matched = True
    return (None if matched else "SnapshotNotFound"), (metadata or b"", state, entries)


def read_object(snap_index, snap_term, error, contents):
    metadata, (term, vote, commit), entries = contents or (b"", (0, 0, 0), [])
    return {
        "snapIndex": snap_index,
        "snapTerm": snap_term,
        "metadata": base64.b64encode(metadata).decode(),
        "term": term,
        "vote": vote,
        "commit": commit,
        "entries": [
            {"term": t, "index": i, "type": k, "data": base64.b64encode(d).decode()}
            for (t, i, k, d) in entries
        ],
        "error": error,
    }


class Log:
    def __init__(self, bug):
        self.bug = bug
        self.file = None
        self.known = (0, 0)  # term and vote of the last hard state saved since the open
        self.failed = False  # a write or fsync failed: refuse everything until the next open

    def current(self):
        if self.failed:
            raise Refused("Failed", "an earlier write or fsync failed; open the log again")
        if self.file is None:
            raise Refused("NotOpen", "no log is open")
        return self.file

    def append(self, payloads, sync):
        f = self.current()
        f.write(b"".join(frame(p) for p in payloads))
        f.flush()
        if sync:
            os.fsync(f.fileno())

    def close(self):
        if self.failed and self.file is not None:
            self.drop()  # nothing more may be claimed durable
            raise Refused("Failed", "an earlier write or fsync failed; open the log again")
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            self.file = None

    def create(self, directory, metadata):
        self.discard()
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "log")
        if os.path.exists(path):
            raise Refused("AlreadyExists", f"{path} exists")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(frame(bytes([METADATA]) + metadata))
            f.write(frame(struct.pack("<BQQ", SNAPSHOT, 0, 0)))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fsync_dir(directory)
        fsync_dir(os.path.dirname(os.path.abspath(directory)))
        self.file = open(path, "ab")
        self.known = (0, 0)

    def discard(self):
        """Before a create or an open: close what is open; after a failure, without a claim."""
        if self.failed:
            self.drop()
            self.failed = False
        else:
            self.close()

    def drop(self):
        """Lets go of the file without flushing or syncing it."""
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None

    def save(self, term, vote, commit, entries):
        payloads = [entry_record(*e) for e in entries]
        empty_state = (term, vote, commit) == (0, 0, 0)
        if not empty_state:
            payloads.append(struct.pack("<BQQQ", STATE, term, vote, commit))
        # raft's contract: durable when there are entries, or term or vote changed.
        changed = not empty_state and (term, vote) != self.known
        if self.bug == "no-fsync-on-term-change":
            changed = False
        self.append(payloads, sync=bool(entries) or changed)
        if not empty_state:
            self.known = (term, vote)

    def snapshot(self, index, term):
        self.append([struct.pack("<BQQ", SNAPSHOT, index, term)], sync=True)

    def sync(self):
        os.fsync(self.current().fileno())

    def open(self, directory, snap_index, snap_term):
        self.discard()
        path = os.path.join(directory, "log")
        if not os.path.exists(path):
            return read_object(snap_index, snap_term, "NoLog", None)
        records, valid = read_frames(path)
        if valid < os.path.getsize(path):
            # A torn tail: cut it off before anything is appended after it.
            with open(path, "r+b") as f:
                f.truncate(valid)
                os.fsync(f.fileno())
        error, contents = read_all(records, snap_index, snap_term)
        self.file = open(path, "ab")
        self.known = (0, 0)  # etcd's rule: the first Save after an open is compared with nothing
        return read_object(snap_index, snap_term, error, contents)


def answer(log, request):
    op = request.get("op")
    if op == "hello":
        name = "naive.py" + (f" --bug {log.bug}" if log.bug else "")
        return {"ok": True, "name": name, "supports": ["overwrite", "snapshot", "install", "release", "sync"]}
    if op == "create":
        log.create(request["dir"], base64.b64decode(request["metadata"], validate=True))
    elif op == "save":
        entries = [
            (
                number(e["term"], "term"),
                number(e["index"], "index"),
                number(e["type"], "type"),
                base64.b64decode(e["data"], validate=True),
            )
            for e in request["entries"]
        ]
        log.save(number(request["term"], "term"), number(request["vote"], "vote"),
                 number(request["commit"], "commit"), entries)
    elif op == "snapshot":
        log.snapshot(number(request["index"], "index"), number(request["term"], "term"))
    elif op == "sync":
        log.sync()
    elif op == "release":
        number(request["index"], "index")
        log.current()
    elif op == "close":
        log.close()
    elif op == "open":
        read = log.open(request["dir"], number(request["snapIndex"], "snapIndex"),
                        number(request["snapTerm"], "snapTerm"))
        return {"ok": True, "read": read}
    else:
        raise Refused("BadRequest", f"unknown op {op!r}")
    return {"ok": True}


def main(argv):
    bug = None
    if len(argv) == 2 and argv[0] == "--bug" and argv[1] in BUGS:
        bug = argv[1]
    elif argv:
        print(f"usage: naive.py [--bug {'|'.join(BUGS)}]", file=sys.stderr)
        return 2
    log = Log(bug)
    for line in sys.stdin:
        try:
            request = json.loads(line)
            if request.get("op") == "quit":
                log.close()
                print(json.dumps({"ok": True}, separators=(",", ":")), flush=True)
                return 0
            reply = answer(log, request)
        except Refused as e:
            reply = {"ok": False, "error": e.kind, "message": str(e)}
        except (ValueError, KeyError, TypeError, AttributeError, struct.error) as e:
            reply = {"ok": False, "error": "BadRequest", "message": f"{type(e).__name__}: {e}"}
        except OSError as e:
            reply = {"ok": False, "error": "IoError", "message": str(e)}
            if log.bug != "ack-after-fsync-error":
                log.failed = True
        sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
