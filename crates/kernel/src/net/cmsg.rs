//! Control messages a receive hands back (`struct cmsghdr` records in the
//! caller's msg_control), built as Linux's `put_cmsg` builds them: each
//! record is `CMSG_SPACE(len)` bytes, a record that does not fit is cut to
//! the room left (its `cmsg_len` says how much is there) and the receive
//! reports MSG_CTRUNC; with less room than a header (or no buffer at all)
//! nothing is written and MSG_CTRUNC is set.

use super::MSG_CTRUNC;

/// sizeof(struct cmsghdr) on x86_64.
const HDR: usize = 16;

/// Control messages for one receive, within the caller's `room`.
pub struct Cmsgs {
    buf: Vec<u8>,
    room: usize,
    /// MSG_CTRUNC or 0.
    pub flags: i32,
}

impl Cmsgs {
    /// A builder for a msg_control of `room` bytes (0: none given).
    pub fn new(room: usize) -> Cmsgs {
        Cmsgs {
            buf: Vec::new(),
            room,
            flags: 0,
        }
    }

    /// Appends one record (level, type, data).
    pub fn put(&mut self, level: i32, typ: i32, data: &[u8]) {
        let left = self.room - self.buf.len();
        if left < HDR {
            self.flags |= MSG_CTRUNC;
            return;
        }
        let mut cmlen = HDR + data.len();
        if left < cmlen {
            self.flags |= MSG_CTRUNC;
            cmlen = left;
        }
        self.buf.extend_from_slice(&(cmlen as u64).to_le_bytes());
        self.buf.extend_from_slice(&level.to_le_bytes());
        self.buf.extend_from_slice(&typ.to_le_bytes());
        self.buf.extend_from_slice(&data[..cmlen - HDR]);
        let space = ((HDR + data.len() + 7) & !7).min(left);
        self.buf.resize(self.buf.len() - cmlen + space, 0);
    }

    /// The bytes to copy to msg_control (their length is the new
    /// msg_controllen).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_and_truncates() {
        let mut c = Cmsgs::new(64);
        c.put(0, 8, &[1; 12]);
        assert_eq!(c.bytes().len(), 32);
        assert_eq!(c.flags, 0);
        c.put(0, 2, &[2; 4]);
        assert_eq!(c.bytes().len(), 56);
        // 8 bytes left: less than a header.
        c.put(0, 1, &[3]);
        assert_eq!(c.flags, MSG_CTRUNC);
        assert_eq!(c.bytes().len(), 56);
        let mut c = Cmsgs::new(20);
        c.put(0, 8, &[1; 12]);
        assert_eq!(c.bytes().len(), 20);
        assert_eq!(&c.bytes()[..8], &20u64.to_le_bytes());
        assert_eq!(c.flags, MSG_CTRUNC);
        let mut c = Cmsgs::new(0);
        c.put(1, 29, &[0; 16]);
        assert!(c.bytes().is_empty());
        assert_eq!(c.flags, MSG_CTRUNC);
    }
}
