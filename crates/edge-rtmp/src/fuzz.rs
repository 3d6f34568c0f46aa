//! Fuzz entry points. Each function is the whole body of one cargo-fuzz target in `fuzz/`,
//! and the unit tests below run them on seed and regression inputs on stable Rust, so CI
//! exercises them without nightly. None may panic, whatever the input.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};

use crate::auth::{PublishAuthorizer, PublishEnded, PublishGrant, PublishRequest, Refusal};
use crate::conn::{Action, Connection};
use crate::guard::{ChunkGuard, MAX_AMF_DEPTH, amf0_depth_within};
use crate::media::Demuxer;
use crate::stats::IngestStats;
use crate::{RtmpConfig, codec, flv};

/// FLV tag bodies through the parsers and the demuxer's state machine. Input: records of
/// `[kind: 0 audio / 1 video][timestamp u32 BE][len u16 BE][body]`.
pub fn flv_tags(data: &[u8]) {
    let mut d = Demuxer::new(10_000, 1_000, Arc::new(IngestStats::new()));
    let mut out = Vec::new();
    let now = Instant::now();
    let mut pos = 0;
    while pos + 7 <= data.len() {
        let kind = data[pos];
        let ts = u32::from_be_bytes([data[pos + 1], data[pos + 2], data[pos + 3], data[pos + 4]]);
        let len = usize::from(u16::from_be_bytes([data[pos + 5], data[pos + 6]]));
        pos += 7;
        let body = Bytes::copy_from_slice(&data[pos..(pos + len).min(data.len())]);
        pos += len;
        let _ = flv::parse_video(&body);
        let _ = flv::parse_audio(&body);
        let _ = if kind & 1 == 1 { d.video(ts, &body, now, &mut out) } else { d.audio(ts, &body, now, &mut out) };
        out.clear();
    }
    d.finish(&mut out);
}

/// AMF0 as `connect` and `onMetaData` carry it: the depth guard, then rml_amf0 on what the
/// guard lets through (deeper input would overflow rml_amf0's recursion, which the guard
/// exists to prevent).
pub fn amf0(data: &[u8]) {
    if amf0_depth_within(data, MAX_AMF_DEPTH) {
        let _ = rml_rtmp::rml_amf0::deserialize(&mut std::io::Cursor::new(data));
    }
}

/// Decoder configuration parsers (avcC, hvcC, SPS, AudioSpecificConfig, NAL length rewrite).
pub fn codec_config(data: &[u8]) {
    let _ = codec::parse_avcc(data);
    let _ = codec::parse_hvcc(data);
    let _ = codec::parse_asc(data);
    let _ = codec::h264_sps_size(data);
    let _ = codec::hevc_sps_size(data);
    if let Some(&n) = data.first() {
        let b = Bytes::copy_from_slice(&data[1..]);
        let _ = codec::to_four_byte_nal_lengths(&b, usize::from(n % 5));
    }
    let _ = codec::nal_lengths_valid(data);
}

/// The chunk-stream guard alone, fed in two pieces.
pub fn chunk_stream(data: &[u8]) {
    let mut g = ChunkGuard::new(64 * 1024);
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let _ = g.feed(&data[..split]).and_then(|_| g.feed(&data[split..]));
}

/// A server connection after a real handshake fed arbitrary bytes. If the first byte is odd,
/// a real client first connects and publishes, so the input reaches the publishing state.
pub fn rtmp_session(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let mut conn = Connection::new(
        SocketAddr::from(([127, 0, 0, 1], 1935)),
        false,
        Arc::new(GrantAll),
        RtmpConfig::default(),
        now,
    );
    let Some(server_start) = handshake(&mut conn, now) else {
        return;
    };
    if mode & 1 == 1 && !connect_and_publish(&mut conn, server_start, now) {
        return;
    }
    let split = usize::from(mode >> 1).min(rest.len());
    for piece in [&rest[..split], &rest[split..]] {
        let _ = conn.handle_input(piece, now);
        if conn.is_closed() {
            return;
        }
    }
    let _ = conn.handle_closed(None, now);
}

/// Grants every publish a throwaway queue.
struct GrantAll;

impl PublishAuthorizer for GrantAll {
    fn authorize(&self, req: &PublishRequest) -> Result<PublishGrant, Refusal> {
        let (media, _rx, _) = edge_media::queue(4);
        Ok(PublishGrant {
            event_id: req.stream_key.clone(),
            event_name: req.stream_key.clone(),
            media,
            stats: Arc::new(IngestStats::new()),
        })
    }
    fn publish_ended(&self, _: &PublishEnded) {}
}

fn sent(actions: Vec<Action>) -> Vec<u8> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Send(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Completes a handshake; returns what the server sent after it (its session start).
fn handshake(conn: &mut Connection, now: Instant) -> Option<Vec<u8>> {
    let mut client = Handshake::new(PeerType::Client);
    let c0c1 = client.generate_outbound_p0_and_p1().ok()?;
    let s0s1s2 = sent(conn.handle_input(&c0c1, now));
    match client.process_bytes(&s0s1s2) {
        Ok(HandshakeProcessResult::Completed { response_bytes, .. }) => {
            let start = sent(conn.handle_input(&response_bytes, now));
            (!conn.is_closed()).then_some(start)
        }
        _ => None,
    }
}

fn connect_and_publish(conn: &mut Connection, server_start: Vec<u8>, now: Instant) -> bool {
    let Ok((mut client, initial)) = ClientSession::new(ClientSessionConfig::new()) else {
        return false;
    };
    let Ok(results) = client.handle_input(&server_start) else {
        return false;
    };
    let mut to_server: Vec<u8> = packets(initial);
    to_server.extend(packets(results));
    let Ok(r) = client.request_connection("live".into()) else {
        return false;
    };
    to_server.extend(packets(vec![r]));
    // Ping-pong until the client is connected, then publish the same way.
    for _ in 0..8 {
        let reply = sent(conn.handle_input(&std::mem::take(&mut to_server), now));
        let Ok(results) = client.handle_input(&reply) else {
            return false;
        };
        let accepted = results
            .iter()
            .any(|r| matches!(r, ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted)));
        to_server.extend(packets(results));
        if accepted {
            match client.request_publishing("key".into(), PublishRequestType::Live) {
                Ok(r) => to_server.extend(packets(vec![r])),
                Err(_) => return false,
            }
        }
        if conn.is_publishing() {
            return true;
        }
    }
    conn.is_publishing()
}

fn packets(results: Vec<ClientSessionResult>) -> Vec<u8> {
    results
        .into_iter()
        .filter_map(|r| match r {
            ClientSessionResult::OutboundResponse(p) => Some(p.bytes),
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::flv_tags as sample_tags;

    /// A small deterministic generator: the stable stand-in for a fuzzer's mutations.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
            let mut v = seed.to_vec();
            for _ in 0..1 + self.next() % 8 {
                if v.is_empty() {
                    v.push(self.next() as u8);
                    continue;
                }
                let i = (self.next() as usize) % v.len();
                match self.next() % 4 {
                    0 => v[i] = self.next() as u8,
                    1 => v[i] ^= 1 << (self.next() % 8),
                    2 => v.truncate(i),
                    _ => v.insert(i, self.next() as u8),
                }
            }
            v
        }
    }

    fn regressions(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect()
    }

    fn tag_records() -> Vec<u8> {
        let mut v = Vec::new();
        for t in sample_tags() {
            if t.kind == 18 {
                continue;
            }
            v.push(u8::from(t.kind == 9));
            v.extend(t.ts.to_be_bytes());
            v.extend((t.body.len() as u16).to_be_bytes());
            v.extend(&t.body);
        }
        v
    }

    fn run(target: fn(&[u8]), seeds: &[Vec<u8>], name: &str, mutations: usize) {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut all = seeds.to_vec();
        all.extend(regressions(name));
        for s in &all {
            target(s);
        }
        for i in 0..mutations {
            let seed = &all[i % all.len()];
            target(&rng.mutate(seed));
        }
    }

    /// The sample's media as RTMP chunks, as a publisher sends them (chunk size 4096).
    fn media_chunks() -> Vec<u8> {
        let mut ser = rml_rtmp::chunk_io::ChunkSerializer::new();
        let ts0 = rml_rtmp::time::RtmpTimestamp::new(0);
        let mut out = ser.set_max_chunk_size(4096, ts0).unwrap().bytes;
        for t in sample_tags().into_iter().take(20) {
            let p = rml_rtmp::messages::MessagePayload {
                timestamp: rml_rtmp::time::RtmpTimestamp::new(t.ts),
                message_stream_id: 1,
                type_id: t.kind,
                data: Bytes::from(t.body),
            };
            out.extend(ser.serialize(&p, false, false).unwrap().bytes);
        }
        out
    }

    /// Seed inputs per target; also written to `fuzz/seeds/` by `write_seeds`.
    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let with_prefix = |p: u8, v: &[u8]| [&[p][..], v].concat();
        match target {
            "flv_tags" => {
                let sample = tag_records();
                vec![sample.clone(), sample[..200].to_vec()]
            }
            "amf0" => {
                let script = sample_tags().into_iter().find(|t| t.kind == 18).unwrap().body;
                // Nesting far past the guard (rml_amf0 alone overflows a 2 MiB stack at ~5000).
                let deep = std::iter::repeat_n([3u8, 0, 1, b'a'], 1000).flatten().collect();
                vec![script, deep]
            }
            "codec_config" => {
                let tags = sample_tags();
                let avcc = tags.iter().find(|t| t.kind == 9 && t.body[1] == 0).unwrap();
                let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
                vec![
                    avcc.body[5..].to_vec(),
                    std::fs::read(format!("{dir}x265_320x180.hvcC")).unwrap(),
                    std::fs::read(format!("{dir}x264_1920x1080.avcC")).unwrap(),
                    vec![0x12, 0x10],
                ]
            }
            "chunk_stream" => vec![with_prefix(100, &media_chunks()), vec![0x03; 40]],
            "rtmp_session" => {
                let media = media_chunks();
                // Odd mode: connected and publishing first; even: right after the handshake.
                vec![with_prefix(1, &media), with_prefix(40, &media), vec![1]]
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn flv_tags_target() {
        run(flv_tags, &seeds("flv_tags"), "flv_tags", 3000);
    }

    #[test]
    fn amf0_target() {
        run(amf0, &seeds("amf0"), "amf0", 3000);
    }

    #[test]
    fn codec_config_target() {
        run(codec_config, &seeds("codec_config"), "codec_config", 3000);
    }

    #[test]
    fn chunk_stream_target() {
        run(chunk_stream, &seeds("chunk_stream"), "chunk_stream", 3000);
    }

    #[test]
    fn rtmp_session_target() {
        run(rtmp_session, &seeds("rtmp_session"), "rtmp_session", 300);
    }

    /// `cargo test -p edge-rtmp --lib write_seeds -- --ignored` refreshes `fuzz/seeds/`.
    #[test]
    #[ignore]
    fn write_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
        for target in ["flv_tags", "amf0", "codec_config", "chunk_stream", "rtmp_session"] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds(target).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
            }
        }
    }

    #[test]
    fn the_session_harness_reaches_publishing() {
        let now = Instant::now();
        let mut conn = Connection::new(
            SocketAddr::from(([127, 0, 0, 1], 1935)),
            false,
            Arc::new(GrantAll),
            RtmpConfig::default(),
            now,
        );
        let start = handshake(&mut conn, now).expect("handshake");
        assert!(connect_and_publish(&mut conn, start, now));
    }
}
