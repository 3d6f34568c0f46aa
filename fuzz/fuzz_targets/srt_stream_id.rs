#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in edge-srt so stable CI runs it on the seeds (edge_srt::fuzz tests).
fuzz_target!(|data: &[u8]| edge_srt::fuzz::srt_stream_id(data));
