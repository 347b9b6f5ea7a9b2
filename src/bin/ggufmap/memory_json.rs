//! Memory figures as text and JSON, shared by `verify` and `load`.

use ggufmap::memory::MemoryUsage;
use serde_json::{json, Value};

const MIB: f64 = 1024.0 * 1024.0;

/// `1234.5 MiB`, or `n/a` where the platform gives no figure.
pub(crate) fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / MIB),
    )
}

/// One line: peak resident, and resident file-backed vs anonymous now.
pub(crate) fn line(usage: Option<&MemoryUsage>) -> String {
    match usage {
        Some(u) => format!(
            "memory: peak resident {}, resident now {} (file-backed {}, anonymous {})",
            mib(u.peak_resident),
            mib(u.resident),
            mib(u.resident_file),
            mib(u.resident_anon)
        ),
        None => "memory: no figures on this platform".to_owned(),
    }
}

/// The same figures as a JSON object (null where unknown).
pub(crate) fn json(usage: Option<&MemoryUsage>) -> Value {
    json!({
        "peak_resident_bytes": usage.and_then(|u| u.peak_resident),
        "resident_bytes": usage.and_then(|u| u.resident),
        "resident_file_bytes": usage.and_then(|u| u.resident_file),
        "resident_anon_bytes": usage.and_then(|u| u.resident_anon),
    })
}
