use std::sync::Mutex;

use super::*;
use crate::depack::rtp_packet;
use crate::rtcp::{SenderReport, sender_report_packet};

#[derive(Default)]
struct FakeAuth {
    invalid: Mutex<Vec<InvalidConnection>>,
    ended: Mutex<Vec<PublishEnded>>,
}

impl RtspAuthorizer for FakeAuth {
    fn authorize(&self, req: &PublishRequest) -> Result<crate::PublishGrant, Refusal> {
        match req.token.as_str() {
            "good" => Ok(crate::PublishGrant {
                event_id: "e1".into(),
                event_name: "ev".into(),
                media: edge_media::queue(64).0,
                stats: Arc::new(RtspStats::new()),
            }),
            "stopped" => Err(Refusal::NotRunning("ev".into())),
            _ => Err(Refusal::UnknownToken),
        }
    }
    fn invalid_connection(&self, c: &InvalidConnection) {
        self.invalid.lock().unwrap().push(c.clone());
    }
    fn publish_ended(&self, e: &PublishEnded) {
        self.ended.lock().unwrap().push(e.clone());
    }
}

const SDP: &str = crate::sdp::tests::FFMPEG_SDP;

fn conn() -> (Connection, Arc<FakeAuth>) {
    let auth = Arc::new(FakeAuth::default());
    let c = Connection::new(1, "192.0.2.9:5000".parse().unwrap(), PushConfig::default(), auth.clone(), Instant::now());
    (c, auth)
}

fn req(method: &str, uri: &str, cseq: u32, extra: &str, body: &str) -> Vec<u8> {
    let len = if body.is_empty() { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
    format!("{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}{len}\r\n{body}").into_bytes()
}

fn sent(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

fn interleaved(ch: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![b'$', ch];
    v.extend((data.len() as u16).to_be_bytes());
    v.extend(data);
    v
}

#[test]
fn tcp_push_end_to_end() {
    let (mut c, auth) = conn();
    let now = Instant::now();
    let uri = "rtsp://10.0.0.1:8554/live/good";
    let a = c.handle_input(&req("OPTIONS", uri, 1, "", ""), now);
    assert!(sent(&a)[0].contains("Public: OPTIONS, ANNOUNCE"));
    let a = c.handle_input(&req("ANNOUNCE", uri, 2, "Content-Type: application/sdp\r\n", SDP), now);
    assert!(matches!(a[0], Action::Attach(_)));
    assert!(sent(&a)[0].starts_with("RTSP/1.0 200 OK\r\nCSeq: 2"));
    let a = c.handle_input(
        &req(
            "SETUP",
            &format!("{uri}/streamid=0"),
            3,
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n",
            "",
        ),
        now,
    );
    let s = &sent(&a)[0];
    assert!(s.contains("interleaved=0-1") && s.contains("Session: "), "{s}");
    let session = s.lines().find_map(|l| l.strip_prefix("Session: ")).unwrap().split(';').next().unwrap().to_owned();
    let a = c.handle_input(
        &req(
            "SETUP",
            &format!("{uri}/streamid=1"),
            4,
            &format!("Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record\r\nSession: {session}\r\n"),
            "",
        ),
        now,
    );
    assert!(sent(&a)[0].contains("interleaved=2-3"));
    let a = c.handle_input(&req("RECORD", uri, 5, &format!("Session: {session}\r\n"), ""), now);
    assert!(sent(&a)[0].starts_with("RTSP/1.0 200"));
    // RTCP SRs, then an IDR in one packet and P frames; AAC frames.
    let mut bytes = interleaved(1, &sender_report_packet(SenderReport { ssrc: 1, ntp: 1 << 40, rtp: 0 }));
    bytes.extend(interleaved(3, &sender_report_packet(SenderReport { ssrc: 2, ntp: 1 << 40, rtp: 0 })));
    for i in 0..8u32 {
        let nal: &[u8] = if i == 0 { &[0x65, 0x88] } else { &[0x41, 0x9a] };
        bytes.extend(interleaved(0, &rtp_packet(96, true, i as u16, i * 3000, 1, nal)));
        bytes.extend(interleaved(2, &rtp_packet(97, true, i as u16, i * 1024, 2, &[0, 16, 0, 2 << 3, 0xaa, 0xbb])));
    }
    let a = c.handle_input(&bytes, now);
    let media: Vec<&MediaEvent> = a
        .iter()
        .filter_map(|x| match x {
            Action::Media(e) => Some(e),
            _ => None,
        })
        .collect();
    let MediaEvent::Tracks(t) = media[0] else { panic!("{a:?}") };
    assert_eq!(t.len(), 2);
    let video = media.iter().filter(|e| matches!(e, MediaEvent::Unit(u) if u.track == 1)).count();
    let audio = media.iter().filter(|e| matches!(e, MediaEvent::Unit(u) if u.track == 2)).count();
    assert_eq!((video, audio), (8 - crate::builder::REORDER_DEPTH, 8));
    let stats = c.stats().unwrap().snapshot(now);
    assert_eq!((stats.rtp_packets, stats.lost, stats.sender_reports), (16, 0, 2));
    let a = c.handle_input(&req("TEARDOWN", uri, 6, &format!("Session: {session}\r\n"), ""), now);
    assert!(matches!(a.last(), Some(Action::Close)));
    assert!(a.iter().any(|x| matches!(x, Action::Media(MediaEvent::End))));
    let flushed = a.iter().filter(|x| matches!(x, Action::Media(MediaEvent::Unit(_)))).count();
    assert_eq!(flushed, crate::builder::REORDER_DEPTH);
    assert_eq!(auth.ended.lock().unwrap()[0].reason, EndReason::Teardown);
    assert!(auth.invalid.lock().unwrap().is_empty());
}

#[test]
fn udp_setup_waits_for_ports() {
    let (mut c, _) = conn();
    let now = Instant::now();
    let uri = "rtsp://h/live/good";
    c.handle_input(&req("ANNOUNCE", uri, 1, "", SDP), now);
    let mut input =
        req("SETUP", &format!("{uri}/streamid=0"), 2, "Transport: RTP/AVP/UDP;unicast;client_port=5000-5001\r\n", "");
    input.extend(req("RECORD", uri, 3, "", ""));
    let a = c.handle_input(&input, now);
    assert!(matches!(a[..], [Action::BindUdp { stream: 0, client_rtp: 5000, client_rtcp: 5001 }]));
    let a = c.udp_bound(6000, 6001);
    assert!(sent(&a)[0].contains("server_port=6000-6001"));
    let a = c.resume(now);
    assert!(sent(&a)[0].contains("CSeq: 3"), "the RECORD buffered behind the SETUP is answered");
    let mut out = Vec::new();
    c.rtp(0, &rtp_packet(96, true, 1, 0, 1, &[0x65, 1]), now, &mut out);
    assert_eq!(c.stats().unwrap().snapshot(now).rtp_packets, 1);
}

#[test]
fn refusals_answer_with_status_and_are_reported() {
    let now = Instant::now();
    for (uri, body, status) in [
        ("rtsp://h/live/wrong", SDP, "404"),
        ("rtsp://h/other/good", SDP, "404"),
        ("rtsp://h/live/stopped", SDP, "455"),
        ("rtsp://h/live/good", &SDP[..60], "400"),
        (
            "rtsp://h/live/good",
            "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            "415",
        ),
    ] {
        let (mut c, auth) = conn();
        let a = c.handle_input(&req("ANNOUNCE", uri, 1, "", body), now);
        assert!(sent(&a)[0].starts_with(&format!("RTSP/1.0 {status}")), "{uri}: {:?}", sent(&a));
        assert!(matches!(a.last(), Some(Action::Close)));
        assert_eq!(auth.invalid.lock().unwrap().len(), 1);
    }
    let (mut c, auth) = conn();
    let mut line = b"OPTIONS rtsp://h/".to_vec();
    line.extend(vec![b'a'; 1 << 20]);
    let a = c.handle_input(&line, now);
    assert!(sent(&a)[0].starts_with("RTSP/1.0 414"));
    assert!(matches!(a.last(), Some(Action::Close)));
    assert_eq!(auth.invalid.lock().unwrap().len(), 1);
    let (mut c, _) = conn();
    let a = c.handle_input(&req("RECORD", "rtsp://h/live/good", 1, "", ""), now);
    assert!(sent(&a)[0].starts_with("RTSP/1.0 455"));
    let a = c.handle_input(&req("DESCRIBE", "rtsp://h/live/good", 2, "", ""), now);
    assert!(sent(&a)[0].starts_with("RTSP/1.0 405"));
}

#[test]
fn idle_sessions_end() {
    let (mut c, auth) = conn();
    let t0 = Instant::now();
    let uri = "rtsp://h/live/good";
    c.handle_input(&req("ANNOUNCE", uri, 1, "", SDP), t0);
    c.handle_input(&req("SETUP", uri, 2, "Transport: RTP/AVP/TCP;interleaved=0-1\r\n", ""), t0);
    c.handle_input(&req("RECORD", uri, 3, "", ""), t0);
    assert!(c.handle_timeout(t0 + Duration::from_secs(5)).is_empty());
    let a = c.handle_timeout(c.deadline());
    assert!(matches!(a.last(), Some(Action::Close)));
    assert!(matches!(auth.ended.lock().unwrap()[0].reason, EndReason::Idle(_)));
}

#[test]
fn tokens_in_paths() {
    assert_eq!(token_of("rtsp://h:1/live/abc"), Some("abc"));
    assert_eq!(token_of("rtsp://h/live/abc/streamid=0"), Some("abc"));
    assert_eq!(token_of("/live/abc?x=1"), Some("abc"));
    assert_eq!(token_of("rtsp://h/live/"), None);
    assert_eq!(token_of("rtsp://h/x/abc"), None);
    assert_eq!(token_of("rtsp://h/live/a%20b"), None);
}
