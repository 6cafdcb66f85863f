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
