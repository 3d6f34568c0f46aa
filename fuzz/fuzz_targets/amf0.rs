#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in edge-rtmp so stable CI runs it on the seeds (edge_rtmp::fuzz tests).
fuzz_target!(|data: &[u8]| edge_rtmp::fuzz::amf0(data));
