# Extended attributes on an ext2/3/4 image (the test made it with the
# host's mke2fs -d from a tree with attributes): read what the host put
# there, then ("write") change them so that some land in the inode, some
# in an attribute block, some blocks are freed, or ("read") only show.
import os, sys

def show(p):
    try:
        items = sorted((n, os.getxattr(p, n)) for n in os.listxattr(p))
        print(p.rsplit('/', 1)[-1], [(n, len(v), v[:8].decode()) for n, v in items])
    except OSError as e:
        print(p.rsplit('/', 1)[-1], 'error', os.strerror(e.errno))

def err(what, f):
    try:
        f()
        print(what, 'ok')
    except OSError as e:
        print(what, os.strerror(e.errno))

M = '/mnt'
os.makedirs(M, exist_ok=True)
if os.system('mount /dev/ubda ' + M) != 0:
    sys.exit('mount failed')
names = ['small', 'big', 'none', 'sub', 'new']
if sys.argv[1] == 'write':
    for f in names[:4]:
        show(M + '/' + f)
    os.setxattr(M + '/none', 'user.a', b'1')
    os.setxattr(M + '/none', 'user.b', b'y' * 2000)
    os.setxattr(M + '/none', 'security.sec', b'S')
    os.removexattr(M + '/big', 'user.big')
    os.setxattr(M + '/small', 'user.color', b'green', os.XATTR_REPLACE)
    err('create existing', lambda: os.setxattr(M + '/small', 'user.color', b'x', os.XATTR_CREATE))
    err('replace missing', lambda: os.setxattr(M + '/small', 'user.nope', b'x', os.XATTR_REPLACE))
    err('remove missing', lambda: os.removexattr(M + '/small', 'user.nope'))
    err('system.posix_acl_access', lambda: os.getxattr(M + '/small', 'system.posix_acl_access'))
    os.setxattr(M + '/sub', 'user.dir2', b'E' * 3000)
    for i in range(20):
        os.setxattr(M + '/small', 'user.k%02d' % i, b'v%d' % i)
    for i in range(0, 20, 2):
        os.removexattr(M + '/small', 'user.k%02d' % i)
    with open(M + '/new', 'w') as f:
        f.write('x')
    os.setxattr(M + '/new', 'user.n', b'N')
    with open(M + '/gone', 'w') as f:
        f.write('x')
    os.setxattr(M + '/gone', 'user.g', b'G' * 1000)
    os.unlink(M + '/gone')
    err('too big for a block', lambda: os.setxattr(M + '/new', 'user.huge', b'h' * 5000))
    err('symlink', lambda: os.setxattr(M + '/link', 'user.l', b'L', follow_symlinks=False))
for f in names:
    show(M + '/' + f)
if os.system('umount ' + M) != 0:
    sys.exit('umount failed')
