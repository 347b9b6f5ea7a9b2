//! Fuzz target `roundtrip`: Metadata and tensors through `GgufWriter` and back (see `ggufmap_fuzz::roundtrip`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ggufmap_fuzz::roundtrip(data);
});
