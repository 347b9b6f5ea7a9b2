//! `ggufmap edit`: keys set, typed and untyped, deleted and added in
//! place; tensors renamed with their data untouched; every refusal a
//! message and exit 1 with the input and any earlier output untouched,
//! a full disk included.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::{run_err, run_ok, BIN};
use std::process::{Command, Stdio};

use std::path::{Path, PathBuf};

use ggufmap::format::Value;
use ggufmap::{Gguf, MetaValue};

/// The sample model, copied into a new temporary directory.
fn sample_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample.gguf"),
        &path,
    )
    .unwrap();
    (dir, path)
}

/// The names in `dir`, sorted: no temporary file may be left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn keys(gguf: &Gguf<'_>) -> Vec<(String, MetaValue)> {
    gguf.metadata()
        .iter()
        .map(|(k, v)| (k.to_owned(), MetaValue::from_value(&v)))
        .collect()
}

#[test]
fn set_delete_add_and_rename() {
    let (dir, input) = sample_copy();
    let out = dir.path().join("out.gguf");
    let before = Gguf::open(&input).unwrap();
    let first = before.tensors().next().unwrap().name().to_owned();
    run_ok(&[
        "edit",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--set",
        "general.name=edited = yes",
        // Untyped: keeps the existing key's type (u32).
        "--set",
        "llama.context_length=4096",
        // Typed: changes the type.
        "--set",
        "llama.block_count:u64=1",
        "--set",
        "zz.new:f32=0.25",
        "--set",
        "aa.new=text",
        "--delete",
        "tokenizer.chat_template",
        "--rename-tensor",
        &format!("{first}=renamed.weight"),
    ]);
    let after = Gguf::open(&out).unwrap();
    let mut expected = keys(&before);
    expected.retain(|(k, _)| k != "tokenizer.chat_template");
    for (k, v) in &mut expected {
        match k.as_str() {
            "general.name" => *v = MetaValue::string("edited = yes"),
            "llama.context_length" => *v = MetaValue::U32(4096),
            "llama.block_count" => *v = MetaValue::U64(1),
            _ => {}
        }
    }
    // Replaced keys keep their place; new keys come last, by name.
    expected.push(("aa.new".into(), MetaValue::string("text")));
    expected.push(("zz.new".into(), MetaValue::F32(0.25)));
    assert_eq!(keys(&after), expected);
    assert_eq!(after.tensor_count(), before.tensor_count());
    for (a, b) in before.tensors().zip(after.tensors()) {
        let name = if a.name() == first {
            "renamed.weight"
        } else {
            a.name()
        };
        assert_eq!(b.name(), name);
        assert_eq!((a.dtype(), a.dims()), (b.dtype(), b.dims()));
        assert_eq!(a.read_bytes().unwrap(), b.read_bytes().unwrap(), "{name}");
    }
    assert!(after.ends_padded() == before.ends_padded());
    // The input is as it was.
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample.gguf")).unwrap()
    );
}

#[test]
fn an_edit_that_changes_nothing_gives_the_same_bytes() {
    let (dir, input) = sample_copy();
    let name = Gguf::open(&input)
        .unwrap()
        .metadata()
        .get_str("general.name")
        .unwrap()
        .to_owned();
    let out = dir.path().join("same.gguf");
    let set = format!("general.name={name}");
    run_ok(&[
        "edit",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--set",
        &set,
    ]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&input).unwrap());
}

#[cfg(unix)]
#[test]
fn in_place_replaces_the_file_and_a_mapping_keeps_the_old_one() {
    use std::os::unix::fs::MetadataExt;
    let (dir, input) = sample_copy();
    let mapped = Gguf::open(&input).unwrap();
    let inode = std::fs::metadata(&input).unwrap().ino();
    run_ok(&[
        "edit",
        input.to_str().unwrap(),
        "--set",
        "general.name=in place",
    ]);
    let edited = Gguf::open(&input).unwrap();
    assert_eq!(
        edited.metadata().get_str("general.name").unwrap(),
        "in place"
    );
    // A new file took the path: the old one, still mapped, is unchanged.
    assert_ne!(std::fs::metadata(&input).unwrap().ino(), inode);
    assert_ne!(
        mapped.metadata().get_str("general.name").unwrap(),
        "in place"
    );
    assert_eq!(listing(dir.path()), ["model.gguf"]);
}

#[test]
fn refusals_leave_everything_untouched() {
    let (dir, input) = sample_copy();
    let out = dir.path().join("out.gguf");
    std::fs::write(&out, b"earlier output").unwrap();
    let original = std::fs::read(&input).unwrap();
    let tensors: Vec<String> = Gguf::open(&input)
        .unwrap()
        .tensors()
        .map(|t| t.name().to_owned())
        .collect();
    let (a, b) = (&tensors[0], &tensors[1]);
    let collide = format!("{a}={b}");
    let swap_bad = format!("{a}=x");
    let swap_bad2 = format!("{b}=x");
    let i = input.to_str().unwrap();
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 13] = [
        (&["--delete", "no.such.key"], "no such key"),
        (&["--set", "llama.context_length=-1"], "is not a u32"),
        (&["--set", "llama.context_length=abc"], "is not a u32"),
        (&["--set", "k:u8=256"], "is not a u8"),
        (&["--set", "k:bool=yes"], "is not a bool"),
        (&["--set", "k:u23=1"], "unknown type"),
        (
            &["--set", "tokenizer.ggml.tokens=a"],
            "array values cannot be set",
        ),
        (&["--set", "general.alignment:u32=64"], "alignment"),
        (&["--delete", "split.count"], "split keys"),
        (&["--rename-tensor", &collide], "taken by"),
        (
            &["--rename-tensor", &swap_bad, "--rename-tensor", &swap_bad2],
            "taken by",
        ),
        (&["--rename-tensor", "missing=x"], "no such tensor"),
        (
            &[
                "--set",
                "a=1",
                "--delete",
                "general.name",
                "--set",
                "general.name=x",
            ],
            "given twice",
        ),
    ];
    for (extra, message) in cases {
        for output in [Some(o), None] {
            let mut args = vec!["edit", i];
            if let Some(o) = output {
                args.extend(["-o", o]);
            }
            args.extend_from_slice(extra);
            let stderr = run_err(&args);
            assert!(stderr.contains(message), "{args:?}: {stderr}");
            assert!(std::fs::read(&input).unwrap() == original, "{args:?}");
            assert_eq!(std::fs::read(&out).unwrap(), b"earlier output", "{args:?}");
            assert_eq!(listing(dir.path()), ["model.gguf", "out.gguf"], "{args:?}");
        }
    }
    // A name of 64 bytes or more is ggml's limit.
    let long = format!("{a}={}", "n".repeat(64));
    assert!(run_err(&["edit", i, "-o", o, "--rename-tensor", &long]).contains("64 bytes"));
    // Nothing asked.
    assert!(run_err(&["edit", i, "-o", o]).contains("nothing to do"));
}

#[cfg(unix)]
#[test]
fn the_output_cannot_be_the_input_by_any_name() {
    let (dir, input) = sample_copy();
    let original = std::fs::read(&input).unwrap();
    let link = dir.path().join("link.gguf");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = dir.path().join("hard.gguf");
    std::fs::hard_link(&input, &hard).unwrap();
    for o in [&input, &link, &hard] {
        let stderr = run_err(&[
            "edit",
            input.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--set",
            "general.name=x",
        ]);
        assert!(stderr.contains("is the input file"), "{stderr}");
        assert!(stderr.contains("leave out -o"), "{stderr}");
    }
    assert!(std::fs::read(&input).unwrap() == original);
}

/// A disk that fills mid-write: the file size limit (`ulimit -f`, in
/// 512-byte blocks) lets the header through and stops the tensor data;
/// SIGXFSZ ignored, so the write fails with EFBIG instead of killing the
/// process.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error_and_changes_nothing() {
    let (dir, input) = sample_copy();
    let original = std::fs::read(&input).unwrap();
    let out = dir.path().join("out.gguf");
    for target in [Some(&out), None] {
        let mut script = format!(
            "trap '' XFSZ; ulimit -f 64; exec \"$0\" edit '{}' --set general.name=full",
            input.display()
        );
        if let Some(o) = target {
            script.push_str(&format!(" -o '{}'", o.display()));
        }
        let result = Command::new("sh")
            .args(["-c", &script, BIN])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot write"), "{stderr}");
        assert!(std::fs::read(&input).unwrap() == original);
        assert_eq!(listing(dir.path()), ["model.gguf"], "{stderr}");
    }
    // A device with no room at all.
    let full = Path::new("/dev/full");
    if full.exists() {
        let stderr = run_err(&[
            "edit",
            input.to_str().unwrap(),
            "-o",
            "/dev/full",
            "--set",
            "general.name=x",
        ]);
        assert!(stderr.contains("No space left"), "{stderr}");
        assert!(std::fs::read(&input).unwrap() == original);
    }
}

#[test]
fn a_chat_template_from_a_file() {
    let (dir, input) = sample_copy();
    let template = dir.path().join("template.jinja");
    let text = "{% for m in messages %}{{ m.content }}\n{% endfor %}";
    std::fs::write(&template, text).unwrap();
    let out = dir.path().join("out.gguf");
    let set = format!("tokenizer.chat_template={}", template.display());
    run_ok(&[
        "edit",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--set-file",
        &set,
    ]);
    let gguf = Gguf::open(&out).unwrap();
    match gguf.metadata().get("tokenizer.chat_template") {
        Some(Value::String(s)) => assert_eq!(s.as_str().unwrap(), text),
        other => panic!("{other:?}"),
    }
}

#[test]
fn padding_that_is_not_zeros_in_the_input_is_zeros_in_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.gguf");
    let mut w = ggufmap::GgufWriter::new();
    for (i, n) in [3u64, 5, 7].into_iter().enumerate() {
        let values: Vec<f32> = (0..n).map(|v| v as f32 + 0.5).collect();
        let data = values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>();
        w.add_tensor(format!("t{i}"), ggufmap::GgmlType::F32, &[n], data)
            .unwrap();
    }
    let mut bytes = w.to_bytes().unwrap();
    let gguf = Gguf::from_bytes(&bytes).unwrap();
    // The gaps between tensors, in the input: filled with 0xAA.
    let ranges: Vec<_> = gguf.tensors().map(|t| t.byte_range()).collect();
    let gaps: Vec<_> = ranges.windows(2).map(|w| w[0].end..w[1].start).collect();
    drop(gguf);
    assert!(
        gaps.iter().all(|g| !g.is_empty()),
        "padding between tensors"
    );
    for gap in &gaps {
        bytes[gap.start as usize..gap.end as usize].fill(0xaa);
    }
    std::fs::write(&path, &bytes).unwrap();
    let out = dir.path().join("out.gguf");
    let (input, output) = (path.to_str().unwrap(), out.to_str().unwrap());
    run_ok(&["edit", input, "-o", output, "--set", "general.name=padded"]);
    let written = std::fs::read(&out).unwrap();
    let (before, after) = (
        Gguf::from_bytes(&bytes).unwrap(),
        Gguf::from_bytes(&written).unwrap(),
    );
    for (a, b) in before.tensors().zip(after.tensors()) {
        assert_eq!(a.bytes().unwrap(), b.bytes().unwrap(), "{}", a.name());
    }
    let ranges: Vec<_> = after.tensors().map(|t| t.byte_range()).collect();
    for w in ranges.windows(2) {
        let gap = &written[w[0].end as usize..w[1].start as usize];
        assert!(gap.iter().all(|&b| b == 0), "padding {gap:?}");
    }
}

#[test]
fn arrays_copied_from_a_big_endian_file_are_written_in_either_order() {
    use ggufmap::format::{ByteOrder, ValueType};
    use ggufmap::{GgufWriter, MetaArray};
    let nested = MetaArray::new(
        ValueType::Array,
        vec![MetaValue::from(vec![1u32, 2]), MetaValue::from(vec![3u32])],
    )
    .unwrap();
    let mut w = GgufWriter::new();
    w.set_byte_order(ByteOrder::Big);
    w.add_metadata("tokens", MetaValue::strings(["a", "bé", ""]))
        .unwrap();
    w.add_metadata("nested", nested).unwrap();
    w.add_metadata("floats", vec![1.5f32, -2.0]).unwrap();
    let big = w.to_bytes().unwrap();
    let source = Gguf::from_bytes(&big).unwrap();
    let copied: Vec<(String, MetaValue)> = keys(&source);
    for order in [ByteOrder::Big, ByteOrder::Little] {
        let mut w = GgufWriter::new();
        w.set_byte_order(order);
        for (key, value) in &copied {
            w.add_metadata(key.clone(), value.clone()).unwrap();
        }
        let bytes = w.to_bytes().unwrap();
        let again = Gguf::from_bytes(&bytes).unwrap();
        assert_eq!(keys(&again), copied, "{order:?}");
        if order == ByteOrder::Big {
            assert_eq!(bytes, big, "the same order writes the same bytes");
        }
    }
    // The copies compare equal to arrays built from values.
    assert_eq!(copied[0].1, MetaValue::strings(["a", "bé", ""]));
}
