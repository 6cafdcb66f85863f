#!/bin/sh
# The host's userland at work in a scratch directory ($1): shell features,
# coreutils, text tools, archives, python and perl. Prints only what does
# not depend on times, pids or the machine, so native and ruml runs can be
# compared line by line.
set -e
mkdir -p "$1"
cd "$1"
echo "== shell"
cat <<'HERE' > here.txt
line one
line two
HERE
x=$(wc -l < here.txt); echo "lines: $x"
( cd /; pwd ); pwd | sed "s|$1|SCRATCH|"
for i in 3 1 2; do echo $i; done | sort | tr '\n' ' '; echo
echo redirected > out.txt 2>&1; cat out.txt
{ echo a; echo b; } | while read l; do echo "got $l"; done
echo "== coreutils"
mkdir -p tree/sub && echo data > tree/sub/f && ln -s sub/f tree/link
cp -a tree copy && ls -la copy/sub | awk '{print $1, $NF}' | tail -n +2
mv copy moved && rm -r moved && ls
find tree | sort
stat -c '%n %s %F' tree/sub/f tree/link
dd if=/dev/zero of=zeros bs=4096 count=16 2>/dev/null && du -k zeros | cut -f1 >/dev/null && ls -l zeros | awk '{print $5}'
sha256sum tree/sub/f | cut -d' ' -f1
seq 1 1000 | sort -rn | head -3 | tr '\n' ' '; echo
printf 'b\na\nc\n' | sort | uniq -c | awk '{print $2}'
df -P . >/dev/null && echo "df ok"
echo "== archives"
tar czf t.tgz tree && mkdir unpack && tar xzf t.tgz -C unpack && find unpack | sort
gzip -k here.txt && gzip -dc here.txt.gz | head -1
echo "== text"
grep -n two here.txt; sed 's/one/ONE/' here.txt | head -1; awk '{s+=length($0)} END {print s}' here.txt
echo "== python"
python3 - <<'PY'
import subprocess, threading, tempfile, socket, select, os, multiprocessing
print(subprocess.run(["echo", "sub"], capture_output=True, text=True).stdout.strip())
out = []
ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]; print(sorted(out))
with tempfile.NamedTemporaryFile("w+") as f:
    f.write("temp"); f.flush(); f.seek(0); print(f.read())
a, b = socket.socketpair(); a.send(b"pair"); print(select.select([b], [], [], 1)[0] == [b], b.recv(4))
def sq(x): return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as p: print(p.map(sq, range(4)))
PY
echo "== perl"
perl -e 'print join(",", map { $_ * 2 } 1..4), "\n"'
perl -ne 'print if /two/' here.txt
echo "== names (the dentry cache must follow every change)"
mkdir a && echo 1 > a/f && cat a/f
mv a b && { cat a/f 2>/dev/null || echo "a/f gone"; } && cat b/f
rm b/f && { cat b/f 2>/dev/null || echo "b/f gone"; }
echo 2 > b/f && cat b/f && ln -s f b/l && cat b/l && rm b/l && { cat b/l 2>/dev/null || echo "b/l gone"; }
mv b/f b/g && ls b && rmdir b 2>/dev/null || echo "b not empty"
rm b/g && rmdir b && { ls b 2>/dev/null || echo "b gone"; }
