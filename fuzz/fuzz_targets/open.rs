//! Fuzz target `open`: Arbitrary bytes through `Gguf::from_bytes` and `Gguf::read`; everything of a file that parses is used.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ggufmap_fuzz::checks::open_bytes(data);
});
