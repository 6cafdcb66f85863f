//! POSIX message queues (placeholder while being written).

use crate::syscall_table;

syscall_table! { pub fn mqueue_table; }
