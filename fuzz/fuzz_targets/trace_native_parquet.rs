#![no_main]
// Body in fuzz/src/lib.rs, shared with the stable corpus replay (tests/fuzz_corpus.rs).
// `load_native_parquet` catches the panics of the `parquet` crate on malformed files and
// returns an error; libfuzzer-sys's panic hook would abort before that catch, so it is
// replaced by a silent one here. A panic that escapes the loader still aborts (libfuzzer-sys
// aborts on any panic that reaches it), without the message: replay the saved input with
// `cargo test --features exec --test fuzz_corpus` to read it.
libfuzzer_sys::fuzz_target!(init: std::panic::set_hook(Box::new(|_| {})), |data: &[u8]| tessera_fuzz::trace_native_parquet(data));
