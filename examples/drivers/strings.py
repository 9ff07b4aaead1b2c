#!/usr/bin/env python3
"""Runs another driver (the command line given) and rewrites every number in its answers as a
decimal string, which the protocol allows (docs/driver-protocol.md): the checker must accept it.
Standard library only."""

import re
import subprocess
import sys

NUMBER = re.compile(r'"(snapIndex|snapTerm|term|vote|commit|index|type)":(\d+)')


def main(argv):
    inner = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in sys.stdin:
        inner.stdin.write(line)
        inner.stdin.flush()
        reply = inner.stdout.readline()
        if not reply:
            return 1
        sys.stdout.write(NUMBER.sub(r'"\1":"\2"', reply))
        sys.stdout.flush()
    inner.stdin.close()
    return inner.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
