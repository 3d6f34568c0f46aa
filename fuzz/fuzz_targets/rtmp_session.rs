#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // rml_rtmp panics on some malformed messages; edge-rtmp unwinds those and closes the
        // connection, which is what this target checks. libFuzzer's hook would abort before
        // the unwind, so keep it only for panics that do not come from inside rml_rtmp (the
        // panic location alone does not tell: slice-index panics point into core).
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            if !(trace.contains("rml_rtmp::") || trace.contains("rml_amf0::")) {
                fuzzer_hook(info);
            }
        }));
    },
    |data: &[u8]| edge_rtmp::fuzz::rtmp_session(data)
);
