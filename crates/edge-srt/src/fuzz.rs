//! Fuzz target bodies, callable from stable unit tests (and from `fuzz/fuzz_targets/`). The
//! TS demultiplexer's are in [`edge_ts::fuzz`].

use std::net::SocketAddr;
use std::time::Instant;

use srt_protocol::listener::{Action, Input, MultiplexListener};
use srt_protocol::settings::ConnInitSettings;

use crate::parse_stream_id;
use crate::transport::{contained, parse_packet};

/// Datagrams (`[len u16 BE][bytes]`, first byte's low bit: IPv6 addressing) through the
/// listener's path: the guarded parser, then srt-protocol's handshake state machine, following
/// its actions the way the listener task does. Panics inside srt-protocol are caught there as
/// in production; this finds aborts, hangs and runaway allocations, and a handshake that
/// loops on its own actions.
pub fn srt_packet(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let ipv6 = flags & 1 == 1;
    let from: SocketAddr = if ipv6 { "[2001:db8::1]:5000" } else { "192.0.2.1:5000" }.parse().unwrap();
    let local: SocketAddr = if ipv6 { "[::1]:9000" } else { "127.0.0.1:9000" }.parse().unwrap();
    let mut listener = MultiplexListener::new(Instant::now(), local, ConnInitSettings::default());
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let datagram = &rest[2..end];
        rest = &rest[end..];
        let Ok(packet) = parse_packet(datagram, ipv6) else { continue };
        let settled = contained(|| {
            let mut action = listener.handle_input(Instant::now(), Input::Packet(Ok((packet, from))));
            for _ in 0..16 {
                if matches!(action, Action::WaitForInput | Action::Close) {
                    return true;
                }
                let next = srt_protocol::listener::NextInputContext::for_action(&action);
                let input = next.input_from::<(), ()>(Ok(()));
                action = listener.handle_input(Instant::now(), input);
            }
            false
        });
        // Outside `contained`, so the fuzzer's panic hook sees it as a finding.
        assert!(!matches!(settled, Ok(false)), "the handshake state machine keeps acting on one datagram");
    }
}

/// Stream-id parsing on arbitrary bytes (as text, the way the handshake hands it over).
pub fn srt_stream_id(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(t) = parse_stream_id(&s) {
        assert!(!t.key.is_empty());
        assert!(t.candidates().next() == Some(t.key.as_str()));
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// A caller's induction handshake datagram (from the fuzz seeds).
    pub fn induction() -> Vec<u8> {
        let seed = &super::tests::packet_seeds()[0];
        seed[3..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds: every form the parser knows, with the mutations a fuzzer would try.
    fn seeds() -> Vec<Vec<u8>> {
        [
            "abc123",
            "live/abc123/cam1",
            "#!::u=alice,r=live/abc123,m=publish",
            "%23%21%3A%3Ar%3Dabc123",
            "srt://h:9000?streamid=abc123&passphrase=x",
            "streamid=abc123&latency=1",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }

    /// `n` deterministic mutations of the seeds (xorshift): up to `max_edits` inserted bytes
    /// (from `specials` or random), overwritten bytes, and truncations that keep `keep` bytes.
    fn mutations(all: &[Vec<u8>], n: usize, max_edits: usize, specials: &[u8], keep: usize) -> Vec<Vec<u8>> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..n)
            .map(|i| {
                let mut v = all[i % all.len()].clone();
                for _ in 0..1 + i % max_edits {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = (x as usize) % (v.len() + 1);
                    match x % 4 {
                        0 if !specials.is_empty() => v.insert(at, specials[(x >> 8) as usize % specials.len()]),
                        1 if at < v.len() => v[at] = (x >> 16) as u8,
                        2 if at >= keep => v.truncate(at),
                        _ => v.insert(at, (x >> 24) as u8),
                    }
                }
                v
            })
            .collect()
    }

    #[test]
    fn srt_stream_id_target() {
        let all = seeds();
        for s in all.iter().chain(&mutations(&all, 5000, 6, b"%&/#,=:!\0\xff", 0)) {
            srt_stream_id(s);
        }
    }

    /// A caller's induction, induction + conclusion (HSv4 form), and a truncated header, framed.
    pub(super) fn packet_seeds() -> Vec<Vec<u8>> {
        use srt_protocol::packet::{
            ControlPacket, ControlTypes, HandshakeControlInfo, HandshakeVsInfo, Packet, ShakeType, SocketId, TimeStamp,
        };
        let shake = |shake_type| {
            Packet::Control(ControlPacket {
                timestamp: TimeStamp::from_micros(100),
                dest_sockid: SocketId(0),
                control_type: ControlTypes::Handshake(HandshakeControlInfo {
                    init_seq_num: srt_protocol::packet::SeqNumber::new_truncate(0x0102_0304),
                    max_packet_size: srt_protocol::options::PacketSize(1500),
                    max_flow_size: srt_protocol::options::PacketCount(8192),
                    shake_type,
                    socket_id: SocketId(0x1234),
                    syn_cookie: 0,
                    peer_addr: [127, 0, 0, 1].into(),
                    info: HandshakeVsInfo::V4(srt_protocol::packet::SocketType::Datagram),
                }),
            })
        };
        let frame = |packets: &[Packet]| {
            let mut out = vec![0u8];
            for p in packets {
                let mut b = bytes::BytesMut::new();
                p.serialize(&mut b);
                out.extend_from_slice(&(b.len() as u16).to_be_bytes());
                out.extend_from_slice(&b);
            }
            out
        };
        vec![
            frame(&[shake(ShakeType::Induction)]),
            frame(&[shake(ShakeType::Induction), shake(ShakeType::Conclusion)]),
            vec![1, 0, 4, 0x80, 0, 0, 0],
        ]
    }

    #[test]
    fn srt_packet_target() {
        let all = packet_seeds();
        assert!(parse_packet(&all[0][3..], false).is_ok(), "the seeds reach the handshake code");
        // Truncations keep the flags byte and the first length.
        for s in all.iter().chain(&mutations(&all, 3000, 8, &[], 3)) {
            srt_packet(s);
        }
    }

    /// `cargo test -p edge-srt --lib write_seeds -- --ignored` refreshes `fuzz/seeds/`.
    #[test]
    #[ignore]
    fn write_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/srt_stream_id");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
        let dir = dir.with_file_name("srt_packet");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in packet_seeds().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}
