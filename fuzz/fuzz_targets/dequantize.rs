//! Fuzz target `dequantize`: A ggml type and block bytes, dequantized every way there is (see `ggufmap_fuzz::dequantize`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ggufmap_fuzz::dequantize(data);
});
