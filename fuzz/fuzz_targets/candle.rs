//! Fuzz target `candle`: QTensors and whole-model loads into candle from every kind of storage (see `ggufmap_fuzz::candle`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ggufmap_fuzz::candle(data);
});
