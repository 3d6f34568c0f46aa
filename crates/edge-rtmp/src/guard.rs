//! A chunk-stream scanner that runs ahead of rml_rtmp on the same bytes and refuses input
//! that rml_rtmp would mishandle:
//!
//! - messages larger than the configured limit, refused from their first chunk header rather
//!   than after rml_rtmp has buffered them (the wire allows 16 MiB);
//! - AMF0 commands and data nested deeper than a few levels: rml_amf0 parses them recursively,
//!   so a ~20 KB `connect` of nested objects would overflow a task's stack and abort the whole
//!   process, before any key was checked;
//! - oversized AMF0 messages and an unbounded number of chunk streams.
//!
//! It follows the chunk format the way rml_rtmp's deserializer does (chunk size changes take
//! effect after the SetChunkSize message, extended timestamps on type-3 chunks inherit the
//! previous header's field), so both agree on message boundaries for any input rml_rtmp itself
//! can parse. It keeps no payload except that of AMF0 and SetChunkSize messages.

/// AMF0 nesting deeper than this is refused (real `connect`/`onMetaData` use 2-3 levels).
pub const MAX_AMF_DEPTH: usize = 16;
/// Largest AMF0 command/data message accepted (real ones are well under 4 KiB).
pub const MAX_AMF_MESSAGE: usize = 64 * 1024;
/// Distinct chunk stream ids one connection may use (encoders use fewer than 10).
const MAX_CHUNK_STREAMS: usize = 64;
const INITIAL_CHUNK_SIZE: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("AMF0 message of {0} bytes is too large")]
    AmfTooLarge(usize),
    #[error("AMF0 values nested deeper than {MAX_AMF_DEPTH}")]
    AmfTooDeep,
    #[error("chunk on stream {0} continues a header that was never sent")]
    NoPreviousHeader(u32),
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyChunkStreams,
    #[error("invalid chunk size {0}")]
    BadChunkSize(u32),
}

#[derive(Debug, Clone, Copy)]
struct Header {
    len: u32,
    type_id: u8,
    ts_field: u32,
    /// Bytes of the current message still to come on this chunk stream.
    remaining: u32,
}

#[derive(Debug)]
pub struct ChunkGuard {
    max_message: usize,
    chunk_size: usize,
    /// Last header per chunk stream: a few entries (encoders use fewer than 10), searched in
    /// order, cheaper than hashing per chunk.
    prev: Vec<(u32, Header)>,
    hdr: Vec<u8>,
    /// Chunk stream and payload bytes left of the chunk being read, if in a payload.
    payload: Option<(u32, usize)>,
    /// Payload of the current AMF0/SetChunkSize message, when collecting.
    collect: Option<Vec<u8>>,
}

fn be(b: &[u8]) -> u32 {
    b.iter().fold(0, |a, &x| (a << 8) | u32::from(x))
}

impl ChunkGuard {
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            chunk_size: INITIAL_CHUNK_SIZE,
            prev: Vec::new(),
            hdr: Vec::with_capacity(18),
            payload: None,
            collect: None,
        }
    }

    /// Checks the next bytes of the chunk stream (after the handshake).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), GuardError> {
        while !data.is_empty() {
            if let Some((csid, left)) = self.payload {
                let n = left.min(data.len());
                if let Some(buf) = &mut self.collect {
                    buf.extend_from_slice(&data[..n]);
                }
                data = &data[n..];
                if n == left {
                    self.payload = None;
                    self.chunk_done(csid)?;
                } else {
                    self.payload = Some((csid, left - n));
                }
                continue;
            }
            let want = self.header_len()?;
            let n = (want - self.hdr.len()).min(data.len());
            self.hdr.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.hdr.len() == want && self.header_len()? == want {
                self.header_done()?;
            }
        }
        Ok(())
    }

    /// Total header length as far as the bytes so far tell (more bytes may raise it).
    fn header_len(&self) -> Result<usize, GuardError> {
        let h = &self.hdr;
        let Some(&b0) = h.first() else { return Ok(1) };
        let basic = match b0 & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        if h.len() < basic {
            return Ok(basic);
        }
        let fmt = b0 >> 6;
        let msg = [11, 7, 3, 0][usize::from(fmt)];
        if h.len() < basic + msg {
            return Ok(basic + msg);
        }
        let ts_field = if fmt < 3 {
            be(&h[basic..basic + 3])
        } else {
            let csid = self.csid();
            self.prev(csid).ok_or(GuardError::NoPreviousHeader(csid))?.ts_field
        };
        Ok(basic + msg + if ts_field == 0xff_ffff { 4 } else { 0 })
    }

    fn csid(&self) -> u32 {
        let h = &self.hdr;
        match h[0] & 0x3f {
            0 => u32::from(h[1]) + 64,
            1 => u32::from(h[2]) * 256 + u32::from(h[1]) + 64,
            x => u32::from(x),
        }
    }

    fn prev(&self, csid: u32) -> Option<Header> {
        self.prev.iter().find(|(c, _)| *c == csid).map(|(_, h)| *h)
    }

    fn header_done(&mut self) -> Result<(), GuardError> {
        let csid = self.csid();
        // Copied out so the header buffer keeps its allocation for the next chunk.
        let mut copy = [0u8; 18];
        let h = &mut copy[..self.hdr.len()];
        h.copy_from_slice(&self.hdr);
        self.hdr.clear();
        let fmt = h[0] >> 6;
        let basic = match h[0] & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        let m = &h[basic..];
        let prev = self.prev(csid);
        let mut hd = match (fmt, prev) {
            (0, _) => Header { ts_field: be(&m[0..3]), len: be(&m[3..6]), type_id: m[6], remaining: 0 },
            (1, Some(p)) => Header { ts_field: be(&m[0..3]), len: be(&m[3..6]), type_id: m[6], remaining: p.remaining },
            (2, Some(p)) => Header { ts_field: be(&m[0..3]), ..p },
            (3, Some(p)) => p,
            _ => return Err(GuardError::NoPreviousHeader(csid)),
        };
        if fmt <= 1 || hd.remaining == 0 {
            // First chunk of a message.
            let len = hd.len as usize;
            if len > self.max_message {
                return Err(GuardError::TooLarge { size: len, limit: self.max_message });
            }
            hd.remaining = hd.len;
            self.collect = match hd.type_id {
                1 | 15 | 17 | 18 | 20 if len > MAX_AMF_MESSAGE => {
                    return Err(GuardError::AmfTooLarge(len));
                }
                1 | 15 | 17 | 18 | 20 => Some(Vec::with_capacity(len)),
                _ => None,
            };
        }
        match self.prev.iter().position(|(c, _)| *c == csid) {
            Some(i) => self.prev[i].1 = hd,
            None if self.prev.len() >= MAX_CHUNK_STREAMS => return Err(GuardError::TooManyChunkStreams),
            None => self.prev.push((csid, hd)),
        }
        let n = (hd.remaining as usize).min(self.chunk_size);
        if n == 0 {
            self.chunk_done(csid)
        } else {
            self.payload = Some((csid, n));
            Ok(())
        }
    }

    fn chunk_done(&mut self, csid: u32) -> Result<(), GuardError> {
        let chunk_size = self.chunk_size;
        let Some((_, hd)) = self.prev.iter_mut().find(|(c, _)| *c == csid) else {
            return Ok(());
        };
        hd.remaining -= (hd.remaining as usize).min(chunk_size) as u32;
        if hd.remaining > 0 {
            return Ok(());
        }
        let type_id = hd.type_id;
        let Some(body) = self.collect.take() else {
            return Ok(());
        };
        match type_id {
            1 if body.len() >= 4 => {
                let size = be(&body[..4]);
                if size == 0 || size > 0x7fff_ffff {
                    return Err(GuardError::BadChunkSize(size));
                }
                self.chunk_size = size as usize;
            }
            // rml_rtmp drops the leading 0 of an "AMF3" command that is really AMF0.
            17 if body.first() == Some(&0) => check_amf0(&body[1..])?,
            15 | 17 | 18 | 20 => check_amf0(&body)?,
            _ => {}
        }
        Ok(())
    }
}

fn check_amf0(data: &[u8]) -> Result<(), GuardError> {
    if amf0_depth_within(data, MAX_AMF_DEPTH) { Ok(()) } else { Err(GuardError::AmfTooDeep) }
}

/// Walks AMF0 values iteratively and reports whether containers nest at most `max` deep.
/// Stops (true) at anything rml_amf0 would reject or not descend into: only nesting matters.
pub fn amf0_depth_within(data: &[u8], max: usize) -> bool {
    enum Frame {
        Object,
        Array(u32),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = data.get(*pos..pos.checked_add(n)?)?;
        *pos += n;
        Some(s)
    };
    loop {
        // Find the marker of the next value, or close a container.
        match stack.last_mut() {
            Some(Frame::Object) => {
                let Some(len) = take(&mut pos, 2).map(be) else {
                    return true;
                };
                if len == 0 {
                    stack.pop();
                    if take(&mut pos, 1).is_none() {
                        return true;
                    }
                    continue;
                }
                if take(&mut pos, len as usize).is_none() {
                    return true;
                }
            }
            Some(Frame::Array(n)) => {
                if *n == 0 {
                    stack.pop();
                    continue;
                }
                *n -= 1;
            }
            None => {}
        }
        let Some(&marker) = data.get(pos) else {
            return true;
        };
        pos += 1;
        let ok = match marker {
            0 => take(&mut pos, 8).is_some(),
            1 => take(&mut pos, 1).is_some(),
            2 => take(&mut pos, 2).map(be).and_then(|n| take(&mut pos, n as usize)).is_some(),
            5 | 6 => true,
            3 => {
                stack.push(Frame::Object);
                true
            }
            8 => {
                let ok = take(&mut pos, 4).is_some();
                stack.push(Frame::Object);
                ok
            }
            10 => match take(&mut pos, 4).map(be) {
                Some(n) => {
                    stack.push(Frame::Array(n));
                    true
                }
                None => false,
            },
            _ => false,
        };
        if stack.len() > max {
            return false;
        }
        if !ok {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::time::RtmpTimestamp;

    fn nested_objects(depth: usize) -> Vec<u8> {
        let mut v = vec![2, 0, 7];
        v.extend_from_slice(b"connect");
        v.extend_from_slice(&[0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        for _ in 0..depth {
            v.extend_from_slice(&[3, 0, 1, b'a']);
        }
        v.push(5);
        for _ in 0..depth {
            v.extend_from_slice(&[0, 0, 9]);
        }
        v
    }

    #[test]
    fn amf0_depth() {
        assert!(amf0_depth_within(&nested_objects(3), 16));
        assert!(amf0_depth_within(&nested_objects(16), 16));
        assert!(!amf0_depth_within(&nested_objects(17), 16));
        // Arrays count too.
        let mut arr = Vec::new();
        for _ in 0..20 {
            arr.extend_from_slice(&[10, 0, 0, 0, 1]);
        }
        assert!(!amf0_depth_within(&arr, 16));
        // Truncated or unknown data is left to rml_amf0 to reject.
        assert!(amf0_depth_within(&[3, 0], 16));
        assert!(amf0_depth_within(&[0x11, 3, 3, 3], 16));
        // Strings holding marker bytes are skipped whole.
        assert!(amf0_depth_within(&[2, 0, 4, 3, 3, 3, 3], 1));
    }

    fn chunks(payloads: &[(u8, Vec<u8>)], chunk_size: Option<u32>) -> Vec<u8> {
        let mut ser = ChunkSerializer::new();
        let mut out = Vec::new();
        if let Some(size) = chunk_size {
            out.extend(ser.set_max_chunk_size(size, RtmpTimestamp::new(0)).unwrap().bytes);
        }
        for (i, (type_id, data)) in payloads.iter().enumerate() {
            let p = MessagePayload {
                timestamp: RtmpTimestamp::new(i as u32 * 40),
                message_stream_id: 1,
                type_id: *type_id,
                data: Bytes::from(data.clone()),
            };
            out.extend(ser.serialize(&p, false, false).unwrap().bytes);
        }
        out
    }

    #[test]
    fn follows_rml_chunking_byte_by_byte() {
        let big = vec![0x17; 70_000];
        let stream =
            chunks(&[(9, big.clone()), (8, vec![0xaf, 1, 2]), (9, big.clone()), (20, nested_objects(2))], Some(4096));
        let mut g = ChunkGuard::new(100_000);
        for b in &stream {
            g.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(g.payload.is_none() && g.hdr.is_empty(), "ends on a message boundary");
        let mut g = ChunkGuard::new(100_000);
        g.feed(&stream).unwrap();
        // Default chunk size, extended timestamps.
        let mut ser = ChunkSerializer::new();
        let mut s2 = Vec::new();
        for ts in [0x00ff_fffe_u32, 0x0100_0005, 0x0100_0100] {
            let p = MessagePayload {
                timestamp: RtmpTimestamp::new(ts),
                message_stream_id: 1,
                type_id: 9,
                data: Bytes::from(vec![1u8; 300]),
            };
            s2.extend(ser.serialize(&p, false, false).unwrap().bytes);
        }
        let mut g = ChunkGuard::new(1000);
        g.feed(&s2).unwrap();
        assert!(g.payload.is_none() && g.hdr.is_empty());
    }

    #[test]
    fn refuses_large_and_deep() {
        let stream = chunks(&[(9, vec![0; 5000])], None);
        assert_eq!(
            ChunkGuard::new(4096).feed(&stream[..20]),
            Err(GuardError::TooLarge { size: 5000, limit: 4096 }),
            "refused at the first header"
        );
        let stream = chunks(&[(20, nested_objects(100))], None);
        assert_eq!(ChunkGuard::new(1 << 20).feed(&stream), Err(GuardError::AmfTooDeep));
        let stream = chunks(&[(18, vec![5; MAX_AMF_MESSAGE + 1])], None);
        assert_eq!(ChunkGuard::new(1 << 20).feed(&stream), Err(GuardError::AmfTooLarge(MAX_AMF_MESSAGE + 1)));
        assert_eq!(ChunkGuard::new(1000).feed(&[0xc5]), Err(GuardError::NoPreviousHeader(5)));
        let zero = chunks(&[(1, vec![0, 0, 0, 0])], None);
        assert_eq!(ChunkGuard::new(1000).feed(&zero), Err(GuardError::BadChunkSize(0)));
    }
}
