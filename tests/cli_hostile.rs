//! The `ggufmap` binary under hostile files and hostile file systems: every
//! subcommand with every flag over the malformed and edge-case files exits
//! 0, 1 or 2 (never a panic, a signal or a hang); outputs never destroy an
//! input or anything that existed before; names reach the terminal escaped.
#![cfg(all(feature = "cli", unix))]

mod gguf_cases;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gguf_cases::{cases, Enc, F32, Q4_K};

/// ggml's I8 type id.
const I8: u32 = 24;

const BIN: &str = env!("CARGO_BIN_EXE_ggufmap");
/// Longest any run may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(60);

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample.gguf")
}

/// Starts the binary with `args`, stdin empty, stdout and stderr piped.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the binary, killing it after [`HANG`]; asserts it exited by itself
/// with 0, 1 or 2.
fn run(args: &[&str]) -> Output {
    let mut child = spawn(args);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG {
            child.kill().unwrap();
            panic!("{args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        matches!(status.code(), Some(0..=2)),
        "{args:?}: {status}, stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every subcommand with every flag that changes what it does to a file.
fn every_command(file: &str, tensor: &str) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["inspect", file],
        vec!["inspect", file, "--json"],
        vec!["verify", file],
        vec!["verify", file, "--json", "--strict", "--threads", "1"],
        vec!["verify", file, "--threads", "2"],
        vec!["bench", file, "--threads", "2", "--json"],
        vec!["inspect", file, "--markdown", "--full-arrays"],
        vec!["diff", file, file, "--json", "--exit-code"],
    ];
    for format in ["raw", "npy"] {
        for dtype in ["f32", "f16", "bf16"] {
            commands.push(vec![
                "dequant", file, tensor, "-o", "-", "--format", format, "--dtype", dtype,
            ]);
        }
    }
    for load_as in ["quantized", "f16", "bf16", "f32"] {
        commands.push(vec!["load", file, "--as", load_as, "--matmul"]);
        commands.push(vec!["load", file, "--as", load_as, "--copy", "--json"]);
    }
    let mut commands: Vec<Vec<String>> = commands
        .into_iter()
        .map(|c| c.into_iter().map(str::to_owned).collect())
        .collect();
    commands.extend(writing_commands(file, tensor));
    commands
}

/// The subcommands that write files, their outputs beside `file`.
fn writing_commands(file: &str, tensor: &str) -> Vec<Vec<String>> {
    let beside = |name: &str| format!("{file}.{name}");
    let (edited, prefix) = (beside("edited.gguf"), beside("part"));
    let rename = format!("{tensor}=renamed");
    let mut commands = vec![
        vec![
            "edit",
            file,
            "-o",
            &edited,
            "--set",
            "general.name=x",
            "--rename-tensor",
            &rename,
        ],
        vec!["diff", file, &edited],
        vec!["split", file, "--max-tensors", "1", "-o", &prefix],
    ];
    let first_part = format!("{prefix}-00001-of-00004.gguf");
    let merged = beside("merged.gguf");
    commands.push(vec!["merge", &first_part, "-o", &merged]);
    let outputs: Vec<(String, &str, &str)> = ["f32", "f16", "bf16"]
        .iter()
        .flat_map(|dtype| {
            ["safetensors", "npz"]
                .map(|format| (beside(&format!("{dtype}.{format}")), format, *dtype))
        })
        .collect();
    for (out, format, dtype) in &outputs {
        commands.push(vec![
            "export", file, "--format", format, "--dtype", dtype, "-o", out,
        ]);
    }
    commands
        .into_iter()
        .map(|c| c.into_iter().map(str::to_owned).collect())
        .collect()
}

fn run_all(file: &Path, tensor: &str) {
    for command in every_command(&file.to_string_lossy(), tensor) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        run(&args);
    }
}

/// Files a parser accepts that stress what comes after it: zero-element
/// tensors whose other dims are huge, a Q4_K tensor with ne0 = 0, names
/// with terminal escapes, strings that are not UTF-8.
fn edge_files() -> Vec<(&'static str, Vec<u8>)> {
    let mut files = Vec::new();
    let mut e = Enc::le();
    e.header(3, 4, 0)
        .tensor(b"a", &[1 << 62, 0], I8, 0)
        .tensor(b"b", &[1 << 36, 0], F32, 0)
        .tensor(b"c", &[0, 1 << 40], Q4_K, 0)
        .tensor(b"d", &[0, 1 << 20, 1 << 20, 1 << 10], F32, 0)
        .pad(32);
    files.push(("zero-element tensors with huge dims", e.finish()));
    let mut e = Enc::le();
    e.header(3, 1, 1)
        .kv_str("\x1b[2Jkey", "\x1b]0;title\x07")
        .tensor(b"\x1b[31mred\x1b[0m", &[4], F32, 0)
        .pad(32)
        .raw(
            &[f32::NAN, 1.0, f32::INFINITY, 2.0]
                .map(f32::to_le_bytes)
                .concat(),
        );
    files.push(("escapes in names and values", e.finish()));
    let mut e = Enc::le();
    e.header(3, 0, 1)
        .key(b"bad.utf8", gguf_cases::T_STRING)
        .str(b"a\xffb\xc3");
    files.push(("a string that is not UTF-8", e.finish()));
    files
}

/// Edge file `index` of [`edge_files`], written to a temporary directory
/// (kept while the returned guard lives).
fn write_edge_file(index: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.gguf");
    let (_, bytes) = edge_files().swap_remove(index);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn every_subcommand_and_flag_survives_every_malformed_and_edge_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.gguf");
    for (_, bytes) in edge_files() {
        std::fs::write(&path, &bytes).unwrap();
        for tensor in ["a", "c", "\x1b[31mred\x1b[0m"] {
            run_all(&path, tensor);
        }
    }
    // The malformed files fail at open, before any flag matters: one
    // command of each subcommand is enough for them.
    for case in cases() {
        std::fs::write(&path, &case.bytes).unwrap();
        let file = path.to_string_lossy();
        for args in [
            &["inspect", "--json", &file][..],
            &["verify", &file],
            &["dequant", &file, "w", "-o", "-"],
            &["load", &file, "--matmul"],
            &["bench", &file],
            &[
                "edit",
                &file,
                "--set",
                "general.name=x",
                "-o",
                &format!("{file}.edited"),
            ],
            &[
                "split",
                &file,
                "--max-tensors",
                "1",
                "-o",
                &format!("{file}.part"),
            ],
            &["merge", &file, "-o", &format!("{file}.merged")],
            &[
                "export",
                &file,
                "--format",
                "npz",
                "-o",
                &format!("{file}.npz"),
            ],
            &["diff", &file, &sample().to_string_lossy()],
        ] {
            run(args);
        }
    }
}

#[test]
fn load_matmul_on_empty_tensors_with_huge_dims_succeeds() {
    let (_dir, path) = write_edge_file(0);
    for load_as in ["quantized", "f32"] {
        let out = run(&["load", &path.to_string_lossy(), "--as", load_as, "--matmul"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn copy_sample(dir: &Path) -> PathBuf {
    let model = dir.join("model.gguf");
    std::fs::copy(sample(), &model).unwrap();
    model
}

#[test]
fn an_output_that_is_the_input_is_refused_through_any_link() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_sample(dir.path());
    let original = std::fs::read(&model).unwrap();
    let hard = dir.path().join("hard.gguf");
    std::fs::hard_link(&model, &hard).unwrap();
    let soft = dir.path().join("soft.gguf");
    std::os::unix::fs::symlink(&model, &soft).unwrap();
    let dotted = dir.path().join(".").join("model.gguf");
    for out in [&model, &hard, &soft, &dotted] {
        let result = run(&[
            "dequant",
            &model.to_string_lossy(),
            "token_embd.weight",
            "-o",
            &out.to_string_lossy(),
        ]);
        assert_eq!(result.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains("is the input file"), "{stderr}");
        assert_eq!(std::fs::read(&model).unwrap(), original, "{out:?}");
    }
    // The input given through the link is refused as well.
    let result = run(&[
        "dequant",
        &hard.to_string_lossy(),
        "token_embd.weight",
        "-o",
        &model.to_string_lossy(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(std::fs::read(&model).unwrap(), original);
}

#[test]
fn a_failed_output_leaves_what_existed_before() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_sample(dir.path());
    let out = dir.path().join("out.bin");
    std::fs::write(&out, b"precious").unwrap();
    let result = run(&[
        "dequant",
        &model.to_string_lossy(),
        "no.such.tensor",
        "-o",
        &out.to_string_lossy(),
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // A success replaces it whole.
    let result = run(&[
        "dequant",
        &model.to_string_lossy(),
        "output_norm.weight",
        "-o",
        &out.to_string_lossy(),
    ]);
    assert_eq!(result.status.code(), Some(0));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 256 * 4);

    // A device is written in place, never replaced or removed.
    let result = run(&[
        "dequant",
        &model.to_string_lossy(),
        "output_norm.weight",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(result.status.code(), Some(0));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn fifos_sockets_devices_and_directories_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let socket = dir.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (socket.as_path(), "a socket"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        for command in ["inspect", "verify", "load", "bench"] {
            let out = run(&[command, &path.to_string_lossy()]);
            assert_eq!(out.status.code(), Some(1));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("is {kind}, not a regular file")),
                "{stderr}"
            );
        }
    }
    // A file system that cannot be mapped is named as such.
    let out = run(&["inspect", "/proc/self/status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not support memory mapping"),
        "{stderr}"
    );
}

#[test]
fn names_and_strings_reach_the_terminal_escaped_everywhere() {
    let (_dir, path) = write_edge_file(1);
    let file = path.to_string_lossy();
    for args in [
        &["inspect", &file][..],
        &["verify", &file],
        &["load", &file, "--as", "quantized"],
        &["load", &file, "--as", "f32"],
        &["dequant", &file, "red", "-o", "-"],
    ] {
        let out = run(args);
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !stream.contains(&0x1b) && !stream.contains(&0x07),
                "{args:?} printed a raw control character: {}",
                String::from_utf8_lossy(stream)
            );
        }
    }
    // verify names the tensor holding NaN and infinity, escaped.
    let out = run(&["verify", &file]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#""\u{1b}[31mred\u{1b}[0m": 1 NaN, 1 infinite"#),
        "{text}"
    );
    assert!(!text.contains("ok:"), "NaN and Inf reported as ok: {text}");
}

#[test]
fn json_is_valid_for_any_bytes_and_keeps_them() {
    let (_dir, path) = write_edge_file(2);
    let out = run(&["inspect", "--json", &path.to_string_lossy()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let value = &json["metadata"]["bad.utf8"]["value"];
    assert_eq!(value["lossy"], "a\u{fffd}b\u{fffd}");
    assert_eq!(value["hex"], "61ff62c3");
    let out = run(&["inspect", &path.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""a\xffb\xc3""#), "{text}");
}

#[test]
fn a_closed_stdout_ends_every_subcommand_quietly() {
    let file = sample().to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (prefix, merged, edited) = (out("part"), out("merged.gguf"), out("edited.gguf"));
    let first_part = format!("{prefix}-00001-of-00003.gguf");
    let exported = out("model.safetensors");
    for args in [
        &["inspect", &file][..],
        &["inspect", "--json", &file],
        &["inspect", "--markdown", &file],
        &["split", &file, "--max-tensors", "5", "-o", &prefix],
        &["merge", &first_part, "-o", &merged],
        &["edit", &file, "-o", &edited, "--set", "general.name=x"],
        &["diff", &file, &edited],
        &["diff", &file, &edited, "--json"],
        &["export", &file, "--format", "safetensors", "-o", &exported],
        &["verify", &file],
        &["verify", "--json", &file],
        &["bench", &file, "--threads", "2"],
        &["bench", &file, "--json"],
        &["load", &file, "--matmul"],
        &["load", &file, "--json"],
        &["dequant", &file, "token_embd.weight", "-o", "-"],
    ] {
        let mut child = spawn(args);
        // The reader goes away before a byte is written.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
