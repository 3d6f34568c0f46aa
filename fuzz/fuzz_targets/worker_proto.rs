#![no_main]

use libfuzzer_sys::fuzz_target;

// The transcode worker's framed protocol (bytes crossing a process boundary). The body lives in
// edge-gst so stable CI runs it on samples (edge_gst::proto tests); edge-gst without its `gst`
// feature links no GStreamer.
fuzz_target!(|data: &[u8]| edge_gst::proto::fuzz_decode(data));
