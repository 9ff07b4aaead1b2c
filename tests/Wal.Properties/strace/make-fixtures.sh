#!/bin/sh
# Records each workload of scenarios.py under strace (the options Strace.options gives) into
# NAME.txt, keeping only the lines that touch /tmp/sf/w, /tmp/sf/outside or stdout.
set -e
here=$(cd "$(dirname "$0")" && pwd)
calls=openat,open,creat,write,pwrite64,writev,pwritev,pwritev2,lseek,read,ftruncate,truncate,fallocate,fsync,fdatasync,sync_file_range,syncfs,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,close,dup,dup2,dup3,fcntl,clone,clone3,fork,vfork,mmap,msync,io_uring_setup,io_uring_enter,io_uring_register,sync
tree=$(printf '/tmp/sf/' | od -An -tx1 | tr -d ' \n' | sed 's/\(..\)/\\\\x\1/g')
# The interpreter itself, not a shim that runs it (pyenv's write to pipes of their own).
python=$(python3 -c 'import sys; print(sys.executable)')
for name in $(grep -o '^def [a-z_]*' "$here/scenarios.py" | cut -c5- | grep -v '^create$'); do
  rm -rf /tmp/sf && mkdir -p /tmp/sf/w && cd /tmp/sf
  strace -f -qq -X raw -xx -s 16777216 -y -e signal=none -e trace=$calls -o /tmp/sf/raw.txt \
    "$python" "$here/scenarios.py" "$name" > /dev/null
  grep -E "[<\"]$tree|write\(1<|msync" /tmp/sf/raw.txt | sed 's/^[0-9]* /100 /' > "$here/$name.txt"
done
