#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in edge-ts so stable CI runs it on the seeds (edge_ts::fuzz tests).
fuzz_target!(|data: &[u8]| edge_ts::fuzz::ts_demux(data));
