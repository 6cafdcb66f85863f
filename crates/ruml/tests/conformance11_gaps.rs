//! Linux conformance II, the gaps the audit of issue #11 found
//! (docs/conformance.md), each differential: mremap(MREMAP_DONTUNMAP)
//! (tests/guest/mremap_dontunmap.c).

mod common;

use common::{differential, Flavour};

/// MREMAP_DONTUNMAP: the pages move, the old range stays mapped and
/// empty (zeros for private anonymous memory, the file's pages for a
/// private file mapping, the same object for shared ones), the new
/// address is a hint, the lock moves; the errors in Linux's order.
#[test]
fn mremap_dontunmap() {
    for flavour in [Flavour::Static, Flavour::Dynamic] {
        let (native, _ruml) = differential("mremap_dontunmap", flavour, &[]);
        assert_eq!(native.code(), 0, "{native}");
        for line in [
            "resize                                   EINVAL",
            "unmapped                                 EFAULT",
            "  contents                               new abcd old ....",
            "  contents                               new bc old a..d",
            "  contents                               new Xg old fg",
            "  smaps Locked                           new 8 kB old 0 kB",
        ] {
            assert!(native.stdout.contains(line), "{line:?} in {native}");
        }
    }
}

/// inotify: IN_CLOSE_* when the last reference goes (a dup, a fork's
/// copy, a mapping hold the file), IN_DELETE_SELF and IN_IGNORED when
/// the inode is gone (last link and last reference), a rename over a
/// watched file, rmdir; a file renamed within its directory while open
/// still reports to IN_EXCL_UNLINK watches, by its new name
/// (tests/guest/inotify_gone.c).
#[test]
fn inotify_delete_self_when_gone() {
    let (native, _ruml) = differential("inotify_gone", Flavour::Static, &[]);
    assert_eq!(native.code(), 0, "{native}");
    for line in [
        "close one:                        \n",
        "close the other:                   [wd 2 0x10] [wd 2 0x400] [wd 2 0x8000]\n",
        "munmap:                            [wd 3 0x8] [wd 3 0x400] [wd 3 0x8000]\n",
        "child exited:                      [wd 4 0x10] [wd 4 0x400] [wd 4 0x8000]\n",
        "write after rename k->l:           [wd 9 0x2 l]\n",
        "write after unlink:               \n",
    ] {
        assert!(native.stdout.contains(line), "{line:?} in {native}");
    }
}
