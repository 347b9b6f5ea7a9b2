//! `ggufmap diff`: what differs between two models: metadata added,
//! removed and changed (arrays element by element), tensors added and
//! removed, type and shape changes, and for tensors in both whether their
//! bytes are identical and, where not, the largest absolute and relative
//! difference of their values. Values are compared chunk by chunk, so
//! memory stays bounded whatever the tensors' sizes.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use ggufmap::format::Value;
use ggufmap::{DequantOptions, TensorView};
use serde_json::{json, Value as Json};

use crate::output::display_name;
use crate::values::{f64_json, summary, type_label, Arrays, JsonValue};

/// Output values per decoded chunk.
const CHUNK_BYTES: usize = 4 << 20;

/// Arguments of `ggufmap diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 whatever the differences (like `diff \
    --no-exit-code`); with --exit-code, 1 when the models differ and 0 when \
    they do not (git's convention); errors exit 1 with `error:` on stderr. \
    Tensors whose bytes differ are dequantized to f32 and compared element \
    by element where they hold as many values: max_abs_diff is the largest \
    |a - b|, max_rel_diff the largest |a - b| / max(|a|, |b|) (0 where both \
    are 0); a NaN against a number counts as an infinite difference, two \
    NaNs as none.")]
pub struct Args {
    /// The first model (A).
    pub a: PathBuf,
    /// The second model (B).
    pub b: PathBuf,
    /// How to open them.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// Print one JSON document (schemas/diff.schema.json) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the models differ.
    #[arg(long)]
    pub exit_code: bool,
}

/// A metadata key whose value differs.
struct Changed<'a, 'data> {
    key: &'a str,
    a: Value<'data>,
    b: Value<'data>,
    /// For arrays of one element type: elements that differ, counting
    /// those only one array has.
    differing: Option<u64>,
}

/// A tensor in both models that differs.
struct TensorChange<'g> {
    a: TensorView<'g>,
    b: TensorView<'g>,
    bytes_identical: bool,
    /// Largest absolute and relative difference, where the tensors hold
    /// as many values.
    max_diff: Option<(f64, f64)>,
}

/// Runs `ggufmap diff`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let a = crate::open(&args.a, &args.open)?;
    let b = crate::open(&args.b, &args.open)?;

    // Metadata: A's order for removed and changed, B's for added.
    let (ma, mb) = (a.metadata(), b.metadata());
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    let mut same_keys = 0u64;
    for (key, va) in ma.iter() {
        match mb.get(key) {
            None => removed.push((key, va)),
            Some(vb) if va.identical(&vb) => same_keys += 1,
            Some(vb) => changed.push(Changed {
                key,
                a: va,
                b: vb,
                differing: differing_elements(&va, &vb),
            }),
        }
    }
    let added: Vec<(&str, Value<'_>)> = mb.iter().filter(|(k, _)| !ma.contains(k)).collect();

    // Tensors.
    let in_b: HashMap<&str, TensorView<'_>> = b.tensors().map(|t| (t.name(), t)).collect();
    let mut removed_tensors = Vec::new();
    let mut changed_tensors = Vec::new();
    let mut identical_tensors = 0u64;
    let total: u64 = a.tensors().map(|t| t.n_elements()).sum();
    let bar = crate::output::progress(total, "comparing", "values", args.json);
    for ta in a.tensors() {
        let Some(&tb) = in_b.get(ta.name()) else {
            removed_tensors.push(ta);
            continue;
        };
        let change = compare(ta, tb)?;
        bar.inc(ta.n_elements());
        match change {
            None => identical_tensors += 1,
            Some(c) => changed_tensors.push(c),
        }
    }
    bar.finish_and_clear();
    let added_tensors: Vec<TensorView<'_>> = b
        .tensors()
        .filter(|t| a.tensor(t.name()).is_err())
        .collect();

    let identical = removed.is_empty()
        && changed.is_empty()
        && added.is_empty()
        && removed_tensors.is_empty()
        && added_tensors.is_empty()
        && changed_tensors.is_empty();
    let mut out = crate::output::stdout();
    if args.json {
        let key_value =
            |(key, value): &(&str, Value<'_>)| json!({"key": key, "value": typed(value)});
        let tensor = |t: &TensorView<'_>| json!({"name": t.name(), "dtype": t.dtype().to_string(), "shape": t.shape()});
        let fields = json!({
            "file_b": args.b.display().to_string(),
            "identical": identical,
            "metadata": {
                "same": same_keys,
                "added": added.iter().map(key_value).collect::<Vec<_>>(),
                "removed": removed.iter().map(key_value).collect::<Vec<_>>(),
                "changed": changed.iter().map(|c| json!({
                    "key": c.key,
                    "a": typed(&c.a),
                    "b": typed(&c.b),
                    "differing_elements": c.differing,
                })).collect::<Vec<_>>(),
            },
            "tensors": {
                "identical": identical_tensors,
                "added": added_tensors.iter().map(tensor).collect::<Vec<_>>(),
                "removed": removed_tensors.iter().map(tensor).collect::<Vec<_>>(),
                "changed": changed_tensors.iter().map(|c| json!({
                    "name": c.a.name(),
                    "a": {"dtype": c.a.dtype().to_string(), "shape": c.a.shape()},
                    "b": {"dtype": c.b.dtype().to_string(), "shape": c.b.shape()},
                    "bytes_identical": c.bytes_identical,
                    "max_abs_diff": c.max_diff.map(|d| f64_json(d.0)),
                    "max_rel_diff": c.max_diff.map(|d| f64_json(d.1)),
                })).collect::<Vec<_>>(),
            },
        });
        crate::report::write_json(&crate::report::object("diff", &args.a, fields), &mut out)?;
    } else {
        writeln!(
            out,
            "metadata: {} changed, {} added, {} removed, {same_keys} same",
            changed.len(),
            added.len(),
            removed.len()
        )?;
        for c in &changed {
            let count = c
                .differing
                .map(|n| format!(" ({n} elements differ)"))
                .unwrap_or_default();
            writeln!(
                out,
                "  ~ {}: {} {} -> {} {}{count}",
                display_name(c.key),
                type_label(&c.a),
                summary(&c.a),
                type_label(&c.b),
                summary(&c.b)
            )?;
        }
        for (sign, list) in [("+", &added), ("-", &removed)] {
            for (key, value) in list {
                writeln!(
                    out,
                    "  {sign} {}: {} {}",
                    display_name(key),
                    type_label(value),
                    summary(value)
                )?;
            }
        }
        writeln!(
            out,
            "tensors: {} changed, {} added, {} removed, {identical_tensors} identical",
            changed_tensors.len(),
            added_tensors.len(),
            removed_tensors.len()
        )?;
        for c in &changed_tensors {
            let values = match c.max_diff {
                Some((abs, rel)) => format!("max abs diff {abs:e}, max rel diff {rel:e}"),
                None => "values not comparable (different element counts)".to_owned(),
            };
            writeln!(
                out,
                "  ~ {}: {} {:?} -> {} {:?}, {values}",
                display_name(c.a.name()),
                c.a.dtype(),
                c.a.shape(),
                c.b.dtype(),
                c.b.shape()
            )?;
        }
        for (sign, list) in [("+", &added_tensors), ("-", &removed_tensors)] {
            for t in list {
                writeln!(
                    out,
                    "  {sign} {}: {} {:?}",
                    display_name(t.name()),
                    t.dtype(),
                    t.shape()
                )?;
            }
        }
    }
    out.flush()?;
    if args.exit_code && !identical {
        drop(out);
        std::process::exit(1);
    }
    Ok(())
}

/// A value as the JSON contract types it (arrays summarised).
fn typed(value: &Value<'_>) -> Json {
    serde_json::to_value(JsonValue {
        value,
        arrays: Arrays::First,
    })
    .unwrap_or(Json::Null)
}

/// For two arrays of one element type, the elements that differ, those
/// only the longer one has included; `None` otherwise.
fn differing_elements(a: &Value<'_>, b: &Value<'_>) -> Option<u64> {
    let (Value::Array(x), Value::Array(y)) = (a, b) else {
        return None;
    };
    if x.element_type() != y.element_type() {
        return None;
    }
    let unequal = x
        .iter()
        .zip(y.iter())
        .filter(|(p, q)| !p.identical(q))
        .count() as u64;
    Some(unequal + x.len().abs_diff(y.len()))
}

/// How `b` differs from `a`, or `None` when their type, shape and bytes
/// are the same.
fn compare<'g>(a: TensorView<'g>, b: TensorView<'g>) -> anyhow::Result<Option<TensorChange<'g>>> {
    let same_layout = a.dtype() == b.dtype() && a.dims() == b.dims();
    let bytes_identical = same_layout && same_bytes(&a, &b)?;
    if bytes_identical {
        return Ok(None);
    }
    let max_diff = if a.n_elements() == b.n_elements() {
        Some(
            max_difference(&a, &b)
                .with_context(|| format!("cannot compare tensor {:?}", a.name()))?,
        )
    } else {
        None
    };
    Ok(Some(TensorChange {
        a,
        b,
        bytes_identical,
        max_diff,
    }))
}

/// True when the two tensors' stored bytes are the same.
fn same_bytes(a: &TensorView<'_>, b: &TensorView<'_>) -> anyhow::Result<bool> {
    Ok(match (a.bytes(), b.bytes()) {
        (Ok(x), Ok(y)) => x == y,
        // Streamed: read (one tensor each at a time).
        _ => a.read_bytes()? == b.read_bytes()?,
    })
}

/// The largest absolute and relative difference between the values of
/// two tensors of as many values, decoded chunk by chunk in step.
fn max_difference(a: &TensorView<'_>, b: &TensorView<'_>) -> anyhow::Result<(f64, f64)> {
    let options = DequantOptions::default();
    let mut xs = a.dequantize_chunks::<f32>(CHUNK_BYTES, &options);
    let mut ys = b.dequantize_chunks::<f32>(CHUNK_BYTES, &options);
    let (mut x, mut y): (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());
    let (mut at_x, mut at_y) = (0usize, 0usize);
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    loop {
        if at_x == x.len() {
            match xs.next() {
                Some(chunk) => x = chunk?.data.to_vec(),
                None => break,
            }
            at_x = 0;
        }
        if at_y == y.len() {
            match ys.next() {
                Some(chunk) => y = chunk?.data.to_vec(),
                None => break,
            }
            at_y = 0;
        }
        let n = (x.len() - at_x).min(y.len() - at_y);
        for (&p, &q) in x[at_x..at_x + n].iter().zip(&y[at_y..at_y + n]) {
            let (abs, rel) = difference(f64::from(p), f64::from(q));
            max_abs = max_abs.max(abs);
            max_rel = max_rel.max(rel);
        }
        at_x += n;
        at_y += n;
    }
    Ok((max_abs, max_rel))
}

/// |p - q| and |p - q| / max(|p|, |q|); a NaN against a number is an
/// infinite difference, two NaNs none.
fn difference(p: f64, q: f64) -> (f64, f64) {
    match (p.is_nan(), q.is_nan()) {
        (true, true) => (0.0, 0.0),
        (true, false) | (false, true) => (f64::INFINITY, f64::INFINITY),
        _ if p == q => (0.0, 0.0),
        _ => {
            let abs = (p - q).abs();
            let scale = p.abs().max(q.abs());
            let rel = if scale.is_finite() {
                abs / scale
            } else {
                f64::INFINITY
            };
            (abs, rel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences() {
        assert_eq!(difference(1.0, 1.0), (0.0, 0.0));
        assert_eq!(difference(1.0, 0.5), (0.5, 0.5));
        assert_eq!(difference(-2.0, 2.0), (4.0, 2.0));
        assert_eq!(difference(f64::NAN, f64::NAN), (0.0, 0.0));
        assert_eq!(difference(f64::NAN, 1.0), (f64::INFINITY, f64::INFINITY));
        assert_eq!(difference(0.0, -0.0), (0.0, 0.0));
        assert_eq!(difference(f64::INFINITY, f64::INFINITY), (0.0, 0.0));
    }
}
