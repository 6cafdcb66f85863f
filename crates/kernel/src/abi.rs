//! Plain-old-data: types that may be copied to and from guest memory as
//! raw bytes (Linux ABI structs are `#[repr(C)]` and implement [`Pod`]).

/// A type every bit pattern of which is valid, with no padding that could
/// leak kernel bytes (or whose padding the author zeroes). Implement only
/// for `#[repr(C)]` structs of integers.
///
/// # Safety
/// Any byte string of `size_of::<Self>()` must be a valid value.
pub unsafe trait Pod: Copy + 'static {
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Pod types are plain bytes.
        unsafe {
            std::slice::from_raw_parts(
                (self as *const Self).cast::<u8>(),
                std::mem::size_of::<Self>(),
            )
        }
    }
    fn from_bytes(b: &[u8]) -> Self {
        assert_eq!(b.len(), std::mem::size_of::<Self>());
        // SAFETY: any bytes are a valid Self; read_unaligned handles alignment.
        unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) }
    }
    fn zeroed() -> Self {
        // SAFETY: all-zero bytes are a valid Pod.
        unsafe { std::mem::zeroed() }
    }
}

macro_rules! pod {
    ($($t:ty),*) => { $(unsafe impl Pod for $t {})* };
}
pod!(u8, i8, u16, i16, u32, i32, u64, i64, usize, isize);
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// Declares `#[repr(C)]` ABI structs and marks them Pod.
#[macro_export]
macro_rules! abi_struct {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($fvis:vis $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name { $($fvis $f: $t),* }
        // SAFETY: repr(C) struct of Pod fields.
        unsafe impl $crate::abi::Pod for $name {}
    };
}
