//! Fuzz target `split`: Parts of a split model, perhaps with one thing wrong, opened as one (see `ggufmap_fuzz::split`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ggufmap_fuzz::split(data);
});
