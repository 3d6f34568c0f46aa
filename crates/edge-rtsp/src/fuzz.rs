//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): every parser of untrusted bytes.
//! Each must return without panicking whatever it is given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::depack::{AacDepacketizer, AacLayout, NalDepacketizer, parse_rtp};
use crate::h26x::VideoCodec;

/// The RTSP request reader, then the push session over the same bytes (with a fake authorizer
/// that grants every token).
pub fn rtsp_request(data: &[u8]) {
    let mut r = crate::message::Reader::new(Default::default());
    r.push(data);
    while let Ok(Some(_)) = r.next_input() {}
    struct Grant;
    impl crate::RtspAuthorizer for Grant {
        fn authorize(&self, _: &crate::PublishRequest) -> Result<crate::PublishGrant, crate::Refusal> {
            Ok(crate::PublishGrant {
                event_id: "e".into(),
                event_name: "e".into(),
                media: edge_media::queue(16).0,
                stats: Arc::new(crate::RtspStats::new()),
            })
        }
        fn invalid_connection(&self, _: &crate::InvalidConnection) {}
        fn publish_ended(&self, _: &crate::PublishEnded) {}
    }
    let now = Instant::now();
    let mut c = crate::session::Connection::new(
        1,
        "127.0.0.1:1".parse().expect("addr"),
        Default::default(),
        Arc::new(Grant),
        now,
    );
    for chunk in data.chunks(97) {
        for a in c.handle_input(chunk, now) {
            if let crate::session::Action::BindUdp { .. } = a {
                c.udp_bound(6000, 6001);
                c.resume(now);
            }
        }
    }
    c.handle_timeout(now + Duration::from_secs(3600));
}

pub fn sdp(data: &[u8]) {
    let _ = crate::sdp::parse(data);
}

/// The answer to the `rtsp_http` tunnel GET (untrusted bytes from the camera), whole and at every
/// length up to 64 bytes and a few cuts beyond, as reads deliver it; then the GET verdict. Checks
/// the parser's own promises: a head never ends past the input and parses the same on its own.
pub fn rtsp_http_response(data: &[u8]) {
    use crate::tunnel::{judge_get, parse_response_head};
    let cuts = (0..data.len().min(64)).chain([data.len() / 2, data.len()]);
    for cut in cuts {
        let part = &data[..cut];
        if let Ok(Some((head, n))) = parse_response_head(part) {
            assert!(n <= part.len() && n <= crate::tunnel::MAX_RESPONSE_HEAD);
            let again = parse_response_head(&part[..n]).expect("the head alone parses").expect("complete");
            assert_eq!(again, (head.clone(), n));
            for (creds, sent) in [(false, false), (true, false), (true, true)] {
                let _ = judge_get(&head, creds, sent).map_err(|e| e.to_string());
            }
        }
    }
}

/// RTP packets (2-byte length prefixed) through the H.264, HEVC and AAC depacketizers and the
/// builder.
pub fn depacketize(data: &[u8]) {
    let mut h264 = NalDepacketizer::new(VideoCodec::H264);
    let mut h265 = NalDepacketizer::new(VideoCodec::H265);
    let layout = AacLayout { size_length: 13, index_length: 3, index_delta_length: 3, frame_samples: 1024 };
    let mut aac = AacDepacketizer::new(layout).expect("layout");
    let mut builder = crate::builder::MediaBuilder::new(vec![
        Some(crate::builder::StreamSpec {
            codec: crate::sdp::StreamCodec::Video { codec: VideoCodec::H264, params: Default::default() },
            clock_rate: 90000,
        }),
        Some(crate::builder::StreamSpec {
            codec: crate::sdp::StreamCodec::Aac { config: bytes::Bytes::from_static(&[0x11, 0x90]), layout },
            clock_rate: 48000,
        }),
    ]);
    let now = Instant::now();
    let mut events = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let pkt = &rest[2..2 + n];
        rest = &rest[2 + n..];
        let Ok(p) = parse_rtp(pkt) else {
            let _ = crate::rtcp::sender_reports(pkt);
            continue;
        };
        let mut aus = Vec::new();
        let _ = h264.push(&p, &mut aus);
        for au in aus {
            builder.frame(
                0,
                au.timestamp,
                crate::builder::Frame::Video { nals: au.nals, damaged: au.damaged },
                now,
                &mut events,
            );
        }
        let mut aus = Vec::new();
        let _ = h265.push(&p, &mut aus);
        for au in aus {
            let _ = crate::h26x::to_sample(VideoCodec::H265, &au.nals, &mut Default::default());
        }
        let mut aus = Vec::new();
        let _ = aac.push(&p, &mut aus);
        for au in aus {
            builder.frame(1, au.timestamp, crate::builder::Frame::Audio(au.data), now, &mut events);
        }
        events.clear();
    }
    builder.flush(&mut events);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depack::rtp_packet;

    /// Deterministic mutations of the seeds (what CI runs on stable; libFuzzer goes further).
    fn run(target: fn(&[u8]), seeds: &[Vec<u8>], mutations: usize) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for s in seeds {
            target(s);
        }
        for i in 0..mutations {
            let mut d = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rnd() % 8 {
                if d.is_empty() {
                    break;
                }
                let at = (rnd() as usize) % d.len();
                match rnd() % 4 {
                    0 => d[at] = rnd() as u8,
                    1 => d.truncate(at),
                    2 => d.insert(at, rnd() as u8),
                    _ => d[at] ^= 0x80,
                }
            }
            target(&d);
        }
    }

    fn sdp_seed() -> Vec<u8> {
        crate::sdp::tests::FFMPEG_SDP.as_bytes().to_vec()
    }

    #[test]
    fn rtsp_request_target() {
        let sdp = crate::sdp::tests::FFMPEG_SDP;
        let mut s = format!(
            "ANNOUNCE rtsp://h/live/t RTSP/1.0\r\nCSeq: 1\r\nContent-Length: {}\r\n\r\n{sdp}SETUP rtsp://h/live/t/streamid=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\nRECORD rtsp://h/live/t RTSP/1.0\r\nCSeq: 3\r\n\r\n",
            sdp.len()
        )
        .into_bytes();
        let pkt = rtp_packet(96, true, 1, 0, 1, &[0x65, 1, 2]);
        s.extend([b'$', 0, 0, pkt.len() as u8]);
        s.extend(pkt);
        let udp = b"ANNOUNCE rtsp://h/live/t RTSP/1.0\r\nCSeq: 1\r\n\r\nSETUP rtsp://h/live/t RTSP/1.0\r\nTransport: RTP/AVP;client_port=4-5\r\n\r\n".to_vec();
        run(rtsp_request, &[s, udp], 1500);
    }

    #[test]
    fn sdp_target() {
        run(sdp, &[sdp_seed()], 3000);
    }

    /// Seeds: the committed files in `fuzz/seeds/rtsp_http_response/` (real answers: gst-rtsp-server,
    /// a Basic and a Digest 401, an RTSP answer from a camera that does not tunnel).
    #[test]
    fn rtsp_http_response_target() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/rtsp_http_response");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .expect("fuzz/seeds/rtsp_http_response")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("seed"))
            .collect();
        assert!(seeds.len() >= 4, "seeds missing in {dir:?}");
        seeds.sort();
        run(rtsp_http_response, &seeds, 3000);
    }

    #[test]
    fn depacketize_target() {
        let mut d = Vec::new();
        for p in [
            rtp_packet(96, false, 1, 0, 1, &[24, 0, 2, 0x67, 1, 0, 2, 0x68, 2]),
            rtp_packet(96, false, 2, 0, 1, &[0x7c, 0x85, 1, 2]),
            rtp_packet(96, true, 3, 0, 1, &[0x7c, 0x45, 3]),
            rtp_packet(97, true, 4, 0, 2, &[0, 16, 0, 3 << 3, 1, 2, 3]),
            rtp_packet(96, true, 5, 0, 1, &[0x62, 1, 0x80 | 19, 0xaa]),
            crate::rtcp::sender_report_packet(crate::rtcp::SenderReport { ssrc: 1, ntp: 1 << 40, rtp: 0 }),
        ] {
            d.extend((p.len() as u16).to_be_bytes());
            d.extend(p);
        }
        run(depacketize, &[d], 3000);
    }
}
