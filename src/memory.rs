//! The process's real memory figures: resident set, its peak, and how much of
//! it is file-backed (such as a mapped model) versus anonymous (such as
//! dequantized buffers).
//!
//! On Linux the figures come from `/proc/self/status`. On other platforms
//! [`usage`] returns `None` and [`reset_peak`] returns `false`: this module
//! reports what the operating system says or nothing, never a made-up zero.
//!
//! ```
//! if let Some(mem) = ggufmap::memory::usage() {
//!     println!("{mem}"); // resident 12.3 MiB (peak 15.0 MiB; anonymous 4.1 MiB, file 8.2 MiB, shmem 0.0 MiB)
//! }
//! ```

// Nothing in this module may panic, whatever the status file holds.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::fmt;

/// Memory figures of one process, in bytes. A field is `None` when the
/// operating system did not report it (an old kernel, a sandbox).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// Resident set size (Linux `VmRSS`): every page of the process in RAM.
    /// On Linux it is the sum of the three `resident_*` fields below.
    pub resident: Option<u64>,
    /// Highest resident set size since the process started or since the last
    /// successful [`reset_peak`] (Linux `VmHWM`).
    pub peak_resident: Option<u64>,
    /// Resident pages backed by files, such as a memory-mapped model
    /// (Linux `RssFile`). The kernel can drop these under pressure and read
    /// them back.
    pub resident_file: Option<u64>,
    /// Resident anonymous pages: heap, stacks, dequantized buffers
    /// (Linux `RssAnon`).
    pub resident_anon: Option<u64>,
    /// Resident shared memory: `tmpfs` and shared anonymous mappings
    /// (Linux `RssShmem`).
    pub resident_shmem: Option<u64>,
}

impl MemoryUsage {
    /// Parses the text of a Linux `/proc/<pid>/status` file.
    ///
    /// Reads `VmRSS`, `VmHWM`, `RssFile`, `RssAnon` and `RssShmem`, each a
    /// count of kibibytes that the kernel writes as `kB`. A field that is
    /// missing or malformed is `None`; if none of them is present the result
    /// is `None`.
    #[must_use]
    pub fn from_proc_status(text: &str) -> Option<MemoryUsage> {
        let mut usage = MemoryUsage::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let field = match key {
                "VmRSS" => &mut usage.resident,
                "VmHWM" => &mut usage.peak_resident,
                "RssFile" => &mut usage.resident_file,
                "RssAnon" => &mut usage.resident_anon,
                "RssShmem" => &mut usage.resident_shmem,
                _ => continue,
            };
            *field = parse_kibibytes(value);
        }
        (usage != MemoryUsage::default()).then_some(usage)
    }
}

/// `"   1234 kB"` -> 1234 * 1024 bytes.
fn parse_kibibytes(value: &str) -> Option<u64> {
    let mut words = value.split_whitespace();
    let number: u64 = words.next()?.parse().ok()?;
    // Any other unit, or trailing text, is a format we do not know.
    match (words.next(), words.next()) {
        (Some("kB"), None) => number.checked_mul(1024),
        _ => None,
    }
}

impl fmt::Display for MemoryUsage {
    /// `resident 12.3 MiB (peak 15.0 MiB; anonymous 4.1 MiB, file 8.2 MiB, shmem 0.0 MiB)`,
    /// with `?` for a figure the operating system did not report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Mib(Option<u64>);
        impl fmt::Display for Mib {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    // Display only: rounding to 0.1 MiB hides any f64 error.
                    Some(bytes) => write!(f, "{:.1} MiB", bytes as f64 / 1_048_576.0),
                    None => f.write_str("?"),
                }
            }
        }
        write!(
            f,
            "resident {} (peak {}; anonymous {}, file {}, shmem {})",
            Mib(self.resident),
            Mib(self.peak_resident),
            Mib(self.resident_anon),
            Mib(self.resident_file),
            Mib(self.resident_shmem),
        )
    }
}

/// This process's memory figures now, or `None` where they cannot be read.
///
/// Linux only for now (it reads `/proc/self/status`); `None` on other
/// platforms, and on Linux when `/proc` is not mounted or reports none of
/// the figures.
///
/// # Performance
///
/// Reads and parses a small file: tens of microseconds. Fine per phase, too
/// slow per element.
#[must_use]
pub fn usage() -> Option<MemoryUsage> {
    if cfg!(target_os = "linux") {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        MemoryUsage::from_proc_status(&text)
    } else {
        None
    }
}

/// Resets the peak resident set size to the current resident set size, so
/// that [`MemoryUsage::peak_resident`] measures from now on. Returns whether
/// it worked.
///
/// On Linux this writes `5` to `/proc/self/clear_refs` (Linux 4.0 and later;
/// some sandboxes forbid it). On other platforms it does nothing and returns
/// `false`.
#[must_use = "the peak is only reset if this returns true"]
pub fn reset_peak() -> bool {
    cfg!(target_os = "linux") && std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    /// Abridged from a Linux 6.8 `/proc/self/status`.
    const STATUS: &str = "\
Name:\tcat
Umask:\t0022
State:\tR (running)
Tgid:\t12345
VmPeak:\t    8456 kB
VmSize:\t    8456 kB
VmLck:\t       0 kB
VmHWM:\t    1920 kB
VmRSS:\t    1792 kB
RssAnon:\t       0 kB
RssFile:\t    1664 kB
RssShmem:\t     128 kB
VmData:\t     360 kB
Threads:\t1
";

    #[test]
    fn parses_every_figure_in_bytes() {
        let usage = MemoryUsage::from_proc_status(STATUS);
        assert_eq!(
            usage,
            Some(MemoryUsage {
                resident: Some(1792 * 1024),
                peak_resident: Some(1920 * 1024),
                resident_file: Some(1664 * 1024),
                resident_anon: Some(0),
                resident_shmem: Some(128 * 1024),
            })
        );
    }

    #[test]
    fn missing_fields_are_none_not_zero() {
        // Kernels before 4.5 have no RssAnon / RssFile / RssShmem.
        let old = "VmHWM:\t 100 kB\nVmRSS:\t 90 kB\n";
        let usage = MemoryUsage::from_proc_status(old);
        assert_eq!(
            usage,
            Some(MemoryUsage {
                resident: Some(90 * 1024),
                peak_resident: Some(100 * 1024),
                ..MemoryUsage::default()
            })
        );
    }

    #[test]
    fn nothing_known_is_none() {
        assert_eq!(MemoryUsage::from_proc_status(""), None);
        assert_eq!(
            MemoryUsage::from_proc_status("Name:\tx\nThreads:\t1\n"),
            None
        );
    }

    #[test]
    fn malformed_values_are_none() {
        for value in [
            "",
            " kB",
            " -5 kB",
            " 12",
            " 12 MB",
            " 12 kB extra",
            " 1.5 kB",
            " 99999999999999999999 kB",
            " 18014398509481984 kB", // * 1024 overflows u64
        ] {
            let text = format!("VmRSS:{value}\nVmHWM:\t 4 kB\n");
            let usage = MemoryUsage::from_proc_status(&text);
            assert_eq!(usage.and_then(|u| u.resident), None, "{value:?}");
            assert_eq!(usage.and_then(|u| u.peak_resident), Some(4096), "{value:?}");
        }
    }

    #[test]
    fn display_prints_mebibytes_and_question_marks() {
        let usage = MemoryUsage {
            resident: Some(3 * 1024 * 1024 / 2),
            peak_resident: Some(2 * 1024 * 1024),
            resident_anon: Some(0),
            ..MemoryUsage::default()
        };
        assert_eq!(
            usage.to_string(),
            "resident 1.5 MiB (peak 2.0 MiB; anonymous 0.0 MiB, file ?, shmem ?)"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let usage = usage().unwrap_or_default();
        assert!(usage.resident.is_some_and(|r| r > 0), "{usage:?}");
    }
}
