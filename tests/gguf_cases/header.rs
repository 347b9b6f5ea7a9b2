//! The header cases of the table (see the parent module).

use super::*;

/// Magic and version.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn magic_and_version(cases: &mut Vec<Case>) {
    let mut bytes = empty();
    bytes[3] = b'G';
    case!(cases, "bad magic GGUG", bytes,
        Err(Error::BadMagic { found }) if found == b"GGUG");
    let mut bytes = empty();
    bytes[..4].copy_from_slice(b"gguf");
    case!(cases, "bad magic lowercase", bytes,
        Err(Error::BadMagic { found }) if found == b"gguf");
    case!(
        cases,
        "magic cut short",
        b"GGU".to_vec(),
        Err(Error::UnexpectedEof {
            what: "magic",
            offset: 0,
            needed: 4,
            available: 3
        })
    );
    case!(
        cases,
        "empty file",
        Vec::new(),
        Err(Error::UnexpectedEof {
            what: "magic",
            offset: 0,
            ..
        })
    );
    for version in [0u32, 1, 4, 0x0100] {
        let mut e = Enc::le();
        e.header(version, 0, 0);
        case!(cases, format!("version {version}"), e.finish(),
            Err(Error::UnsupportedVersion { version: v, .. }) if *v == version);
    }
    for version in [1u32, 4, 0xFFFF] {
        let mut e = Enc::be();
        e.header(version, 0, 0);
        case!(cases, format!("big-endian version {version}"), e.finish(),
            Err(Error::UnsupportedVersion { version: v, .. }) if *v == version);
    }
    // 0x00010000 little-endian has zero low bits: it reads as big-endian 256,
    // and the message gives both readings.
    let mut e = Enc::le();
    e.header(0x0001_0000, 0, 0);
    case!(cases, "version 65536 little-endian", e.finish(),
        Err(e @ Error::UnsupportedVersion { version: 256, raw: [0, 0, 1, 0] })
            if e.to_string().contains("65536 little-endian"));
    let mut e = Enc::be();
    e.header(3, 0, 1).kv_u32("a", 7);
    case!(cases, "big-endian version 3 (valid)", e.finish(),
        Ok(idx) if idx.byte_order() == ByteOrder::Big && idx.version() == 3);
    let mut e = Enc::le();
    e.header(2, 0, 0);
    case!(cases, "version 2 (valid)", e.finish(), Ok(idx) if idx.version() == 2);
    // A big-endian version with little-endian counts: the counts are garbage.
    let mut e = Enc::be();
    e.raw(b"GGUF").u32(3);
    e.order = ByteOrder::Little;
    e.u64(1).u64(0).zeros(64);
    case!(
        cases,
        "big-endian version, little-endian tensor count",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "tensor count",
            count: 0x0100_0000_0000_0000,
            offset: 8,
            ..
        })
    );
    case!(
        cases,
        "version cut short",
        b"GGUF\x03\x00".to_vec(),
        Err(Error::UnexpectedEof {
            what: "version",
            offset: 4,
            needed: 4,
            available: 2
        })
    );
}

/// Counts.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn counts(cases: &mut Vec<Case>) {
    let mut e = Enc::le();
    e.header(3, u64::MAX, 0).zeros(100);
    let len = e.pos();
    case!(cases, "tensor count u64::MAX", e.finish(),
        Err(Error::CountTooLarge { what: "tensor count", count: u64::MAX, offset: 8, max })
            if *max == (len - 16) / 24);
    let mut e = Enc::le();
    e.header(3, 1, 0);
    case!(
        cases,
        "tensor count 1 in a bare header",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "tensor count",
            count: 1,
            offset: 8,
            max: 0
        })
    );
    let mut e = Enc::le();
    e.header(3, 0, 1 << 60).zeros(100);
    let len = e.pos();
    case!(cases, "metadata count 2^60", e.finish(),
        Err(Error::CountTooLarge { what: "metadata count", count, offset: 16, max })
            if *count == 1 << 60 && *max == (len - 24) / 13);
    let mut e = Enc::le();
    e.header(3, 0, 2).kv_u32("a", 1);
    case!(
        cases,
        "metadata count one more than the entries",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "metadata count",
            count: 2,
            offset: 16,
            max: 1
        })
    );
    let mut e = Enc::le();
    e.header(3, 0, 2).kv_u32("a", 1).zeros(12);
    let at = HEADER + 17;
    case!(cases, "metadata count one more, filler zeros", e.finish(),
        Err(Error::UnexpectedEof { what: "u8 value", offset, .. }) if *offset == at + 12);
    case!(
        cases,
        "tensor count cut short",
        b"GGUF\x03\x00\x00\x00\x01\x00".to_vec(),
        Err(Error::UnexpectedEof {
            what: "tensor count",
            offset: 8,
            needed: 8,
            available: 2
        })
    );

    // A tensor count the bytes after byte 8 could hold, but not the bytes the
    // metadata leaves: refused by the second check, before any reservation.
    let mut e = Enc::le();
    e.header(3, 5, 1).kv_str("k", &"x".repeat(240)).zeros(30);
    case!(
        cases,
        "tensor count beyond what the metadata leaves",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "tensor count",
            count: 5,
            offset: 8,
            max: 1
        })
    );
}
