#!/bin/sh
# A file workload for disk filesystems, run in directory $1: natively on
# the host and in ruml on an ext2 mount, and the outputs compared. Prints
# only what does not depend on the filesystem (no directory sizes, inode
# numbers or block counts).
set -e
cd "$1"
mkdir -p a/b/c d
i=1
while [ $i -le 200 ]; do echo "line $i" >> a/log; i=$((i + 1)); done
seq 1 20000 > a/b/nums
head -c 300000 /dev/zero | tr '\0' 'x' > big
printf ZZ | dd of=big bs=1 seek=5000 conv=notrunc 2>/dev/null
dd if=a/log of=sparse bs=1k seek=5000 count=3 conv=notrunc 2>/dev/null
truncate -s 100000 big
truncate -s 400000 a/b/nums
echo data > a/b/c/f
ln a/b/c/f hard
ln -s d/b2/c/f sym
ln -s xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx longsym
mv a/log d/log2
mv a/b d/b2
rm hard
i=1
while [ $i -le 150 ]; do : > d/many_$i; i=$((i + 1)); done
i=1
while [ $i -le 150 ]; do rm d/many_$i; i=$((i + 2)); done
mkdir e e/f
rmdir e/f e
mkdir g h
echo over > g/x
echo old > h/x
mv g/x h/x
mv g h/g
chmod 640 d/log2
chmod 4755 d/b2/c/f
touch -d '2001-02-03 04:05:06' d/log2
mkfifo fifo
: > empty
echo appended >> empty
echo ---tree
find . -mindepth 1 \( -type d -printf '%p d %m\n' \) -o -printf '%p %y %m %s %n\n' | LC_ALL=C sort
echo ---data
find . -type f -exec md5sum {} + | LC_ALL=C sort -k 2
echo ---links
readlink sym longsym
cat sym
echo ---times
stat -c '%n %Y' d/log2
echo ---errors
rmdir d 2>/dev/null || echo rmdir-nonempty
mkdir d 2>/dev/null || echo mkdir-exists
mv d d/b2/inside 2>/dev/null || echo mv-into-self
ln d d2 2>/dev/null || echo link-dir
cat nosuch 2>/dev/null || echo enoent
