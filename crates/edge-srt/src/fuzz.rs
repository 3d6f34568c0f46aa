//! Fuzz target bodies, callable from stable unit tests (and from `fuzz/fuzz_targets/`). The
//! TS demultiplexer's are in [`edge_ts::fuzz`].

use crate::parse_stream_id;

/// Stream-id parsing on arbitrary bytes (as text, the way srt-tokio hands it over).
pub fn srt_stream_id(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(t) = parse_stream_id(&s) {
        assert!(!t.key.is_empty());
        assert!(t.candidates().next() == Some(t.key.as_str()));
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

    #[test]
    fn srt_stream_id_target() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let all = seeds();
        for s in &all {
            srt_stream_id(s);
        }
        for i in 0..5000 {
            let mut v = all[i % all.len()].clone();
            for _ in 0..1 + i % 6 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % (v.len() + 1);
                match x % 4 {
                    0 => v.insert(at, b"%&/#,=:!\0\xff"[(x >> 8) as usize % 10]),
                    1 if at < v.len() => v[at] = (x >> 16) as u8,
                    2 => v.truncate(at),
                    _ => v.insert(at, (x >> 24) as u8),
                }
            }
            srt_stream_id(&v);
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
    }
}
