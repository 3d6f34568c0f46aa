//! Fuzz target bodies, callable from stable unit tests (and from `fuzz/fuzz_targets/`).

use std::time::Instant;

use crate::{TsConfig, TsDemuxer, audio, video};

/// The whole demultiplexer, fed in pieces whose sizes come from the first byte (so the fuzzer
/// explores packets straddling calls), then finished.
pub fn ts_demux(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cfg = TsConfig { max_pes_size: 64 * 1024, ..TsConfig::default() };
    let mut d = TsDemuxer::new(cfg);
    let now = Instant::now();
    let mut out = Vec::new();
    let piece = usize::from(split).max(1) * 7;
    for chunk in rest.chunks(piece) {
        if d.push(chunk, now, &mut out).is_err() {
            break;
        }
        out.clear();
    }
    d.finish(now, &mut out);
}

/// Elementary-stream parsers alone: Annex B (H.264 and HEVC) to samples and configurations,
/// ADTS and LATM framing.
pub fn ts_elementary(data: &[u8]) {
    for codec in [video::VideoCodec::H264, video::VideoCodec::H265] {
        if let Some(au) = video::convert_au(codec, data) {
            let _ = video::build_config(codec, &au.params);
        }
    }
    let mut frames = Vec::new();
    let _ = audio::parse_adts(data, &mut frames);
    let _ = audio::Latm::default().parse(data, &mut frames);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

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
            for _ in 0..1 + self.next() % 16 {
                if v.is_empty() {
                    v.push(self.next() as u8);
                    continue;
                }
                let i = (self.next() as usize) % v.len();
                match self.next() % 5 {
                    0 => v[i] = self.next() as u8,
                    1 => v[i] ^= 1 << (self.next() % 8),
                    2 => v.truncate(i.max(1)),
                    3 => v.insert(i, self.next() as u8),
                    _ => {
                        // Drop a whole TS packet: loss as SRT would deliver it.
                        let at = i - i % 188;
                        v.drain(at..(at + 188).min(v.len()));
                    }
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

    /// Seed inputs per target; also written to `fuzz/seeds/` by `write_seeds`.
    pub(crate) fn seeds(target: &str) -> Vec<Vec<u8>> {
        match target {
            "ts_demux" => {
                let av = synth::h264_aac_program(1, 126_000);
                let mut hevc = synth::TsWriter::new(&[
                    synth::Stream { pid: 0x100, stream_type: 0x24 },
                    synth::Stream { pid: 0x101, stream_type: 0x11 },
                ]);
                hevc.psi();
                hevc.pes(0x100, 3000, Some(0), &synth::hevc_idr_au());
                hevc.pes(0x101, 0, None, &synth::loas_frame(&[0x11, 0x90], &[1, 2, 3], true));
                hevc.pes(0x100, 6000, Some(3000), &synth::hevc_p_au());
                vec![[&[26u8][..], &av].concat(), [&[1u8][..], &hevc.take()].concat()]
            }
            "ts_elementary" => vec![
                synth::h264_idr_au(),
                synth::hevc_idr_au(),
                synth::adts_frame(&[1, 2, 3], 3, 2),
                synth::loas_frame(&[0x11, 0x90], &[1, 2, 3], true),
            ],
            _ => unreachable!(),
        }
    }

    #[test]
    fn ts_demux_target() {
        run(ts_demux, &seeds("ts_demux"), "ts_demux", 400);
    }

    #[test]
    fn ts_elementary_target() {
        run(ts_elementary, &seeds("ts_elementary"), "ts_elementary", 3000);
    }

    /// `cargo test -p edge-ts --lib write_seeds -- --ignored` refreshes `fuzz/seeds/`.
    #[test]
    #[ignore]
    fn write_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
        for target in ["ts_demux", "ts_elementary"] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds(target).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
            }
        }
    }
}
