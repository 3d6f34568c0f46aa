#![no_main]

use libfuzzer_sys::fuzz_target;

// The body lives in edge-rtsp so stable CI runs it on the seeds (edge_rtsp::fuzz tests).
fuzz_target!(|data: &[u8]| edge_rtsp::fuzz::rtsp_http_response(data));
