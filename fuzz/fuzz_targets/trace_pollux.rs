#![no_main]
// Body in fuzz/src/lib.rs, shared with the stable corpus replay (tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz::trace_pollux(data));
