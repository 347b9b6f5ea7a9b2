#!/usr/bin/env python3
"""Regenerates the dequantization reference fixtures in tests/fixtures/dequant/.

For every type the pinned `gguf` package (gguf-py) can dequantize, writes

  <TYPE>.blocks      raw little-endian blocks (random with a fixed seed, but valid)
  <TYPE>.f32         gguf.quants.dequantize of those blocks, little-endian f32
  <TYPE>.nan.blocks  a few blocks with NaN / Inf float scales (types with one)
  <TYPE>.nan.f32     their reference output

and a MANIFEST (type, blocks, elements, bytes, sha256 per file; gguf and numpy
versions) that tests/dequant_fixtures.rs checks before trusting the files.

Block layouts are ggml's ggml-common.h (llama.cpp as vendored by
llama-cpp-python 0.3.36). gguf-py's GGML_QUANT_SIZES gives Q8_1 40 bytes where
ggml has 36; Q8_1 has no gguf-py dequantizer, so no fixture is written for it
(tests/dequant_fixtures.rs has hand-computed vectors for Q8_1, Q8_K, Q1_0 and
Q2_0 instead).

Usage: python3 scripts/make_fixtures.py [--allow-numpy-mismatch]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "dequant"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
# Every committed fixture together must stay under this (checked at the end).
SIZE_BUDGET = 5 * 1024 * 1024


def pins() -> dict[str, str]:
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.strip().lower()] = version.strip()
    return out


def check_versions(allow_numpy_mismatch: bool) -> tuple[str, str]:
    wanted = pins()
    gguf_v = importlib.metadata.version("gguf")
    numpy_v = importlib.metadata.version("numpy")
    if gguf_v != wanted["gguf"]:
        sys.exit(
            f"refusing to run: gguf {gguf_v} is installed but the fixtures are pinned to "
            f"gguf=={wanted['gguf']} (pip install -r {REQUIREMENTS.relative_to(ROOT)})"
        )
    if numpy_v != wanted["numpy"] and not allow_numpy_mismatch:
        sys.exit(
            f"refusing to run: numpy {numpy_v} is installed but requirements.txt pins "
            f"numpy=={wanted['numpy']} (random streams and float paths may differ); "
            "pass --allow-numpy-mismatch to go on anyway"
        )
    return gguf_v, numpy_v


# Imported after the argument parser so --help works without them.
np = None
gguf = None
T = None


# --- block layouts ---------------------------------------------------------------------------

# The block types made here: those gguf-py dequantizes.
FIXTURE_TYPES = (
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    "TQ1_0", "TQ2_0",
    "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL", "IQ4_XS",
    "MXFP4", "NVFP4",
)

LAYOUT_FILE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "BLOCK_LAYOUT"


def read_layouts() -> tuple[dict[str, tuple[int, int, tuple[int, ...]]], int]:
    """The block layouts as ggufmap's block types describe them
    (tests/fixtures/BLOCK_LAYOUT, kept equal to them by a test): type ->
    (elements per block, bytes per block, byte offsets of its f16 scale
    fields), and where IQ1_M's scale nibbles start."""
    layouts, iq1_m = {}, None
    for line in LAYOUT_FILE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, elems, size, *fields = line.split()
        f16 = []
        for field in fields:
            kind, at = field.split("@")
            if kind == "f16":
                f16.append(int(at))
            elif kind == "iq1m":
                iq1_m = int(at)
        layouts[name] = (int(elems), int(size), tuple(f16))
    return {name: layouts[name] for name in FIXTURE_TYPES}, iq1_m


# type -> (elements per block, bytes per block, byte offsets of its f16 scale fields);
# IQ1_M: the four little-endian u16 at IQ1_M_SCALES carry the f16 scale in their top nibbles.
LAYOUTS, IQ1_M_SCALES = read_layouts()

# Blocks per fixture: whole fixtures stay well under the size budget.
BLOCKS_SMALL = 256  # 32- and 64-element blocks
BLOCKS_SUPER = 80  # 256-element super-blocks

# f16 scale bit patterns worth a block of their own.
F16_EDGES = (
    0x0000,  # +0
    0x8000,  # -0
    0x7BFF,  # largest finite, 65504
    0xFBFF,  # -65504
    0x0001,  # smallest subnormal, 2^-24
    0x03FF,  # largest subnormal
    0x8001,  # negative subnormal
    0x0400,  # smallest normal
    0xBC00,  # -1
)
# f16 NaN / Inf scales. Quiet and signalling NaNs, both signs, each with a
# non-zero payload, so that a NaN in the output can be told apart from the
# default NaN an invalid operation (Inf * 0, Inf - Inf) generates.
F16_NONFINITE = (0x7E01, 0xFD55, 0x7C00, 0xFC00)


def seed_for(name: str) -> int:
    return zlib.crc32(name.encode())


def realistic_f16(rng, n: int) -> "np.ndarray":
    """Scales of the size real models have (|d| in 1e-4 .. 1e-1), random sign."""
    mag = 10.0 ** rng.uniform(-4.0, -1.0, size=n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float16).view(np.uint16)


def put_u16(blocks: "np.ndarray", offset: int, bits) -> None:
    bits = np.asarray(bits, dtype=np.uint16)
    blocks[:, offset] = (bits & 0xFF).astype(np.uint8)
    blocks[:, offset + 1] = (bits >> 8).astype(np.uint8)


def put_iq1_m_scale(blocks: "np.ndarray", bits) -> None:
    """Writes f16 bit patterns into IQ1_M's four top nibbles (nibble k of d -> u16 k)."""
    bits = np.asarray(bits, dtype=np.uint16).reshape(-1)
    for k in range(4):
        off = IQ1_M_SCALES + 2 * k
        word = blocks[:, off].astype(np.uint16) | (blocks[:, off + 1].astype(np.uint16) << 8)
        word = (word & 0x0FFF) | (((bits >> (4 * k)) & 0xF) << 12)
        put_u16(blocks, off, word)


def set_scales(name: str, blocks: "np.ndarray", values: list) -> None:
    """Sets every f16 scale field of `blocks` (values: one array per field)."""
    if name == "IQ1_M":
        put_iq1_m_scale(blocks, values[0])
        return
    for off, v in zip(LAYOUTS[name][2], values):
        put_u16(blocks, off, v)


def n_scale_fields(name: str) -> int:
    if name == "IQ1_M":
        return 1
    return len(LAYOUTS[name][2])


def random_blocks(name: str, rng, n: int) -> "np.ndarray":
    """`n` random blocks whose float scales are finite and realistic."""
    _, size, _ = LAYOUTS[name]
    blocks = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    if name == "MXFP4":
        # E8M0 scale 2^(e-128) for the doubled E2M1 values: 2^-13 .. 2^2.
        blocks[:, 0] = rng.integers(115, 131, size=n, dtype=np.uint8)
    elif name == "NVFP4":
        # UE4M3 scales in the usual range, none of the special bytes.
        blocks[:, :4] = rng.integers(0x01, 0x7E, size=(n, 4), dtype=np.uint8)
    else:
        set_scales(name, blocks, [realistic_f16(rng, n) for _ in range(n_scale_fields(name))])
    return blocks


def edge_blocks(name: str, rng) -> "np.ndarray":
    """Blocks with edge-value scales, each in an otherwise random block."""
    if name == "MXFP4":
        exps = [0, 1, 2, 126, 127, 128, 254, 255]
        blocks = random_blocks(name, rng, len(exps))
        blocks[:, 0] = exps
        return blocks
    if name == "NVFP4":
        # 0x00 and 0x7F decode to 0; 0x7E is the largest finite (448 / 2);
        # 0x01 / 0x07 subnormal; 0x08 smallest normal; bit 7 is ignored (0x80, 0xFE, 0xFF).
        special = [0x00, 0x7E, 0x7F, 0x01, 0x07, 0x08, 0x80, 0xFE, 0xFF, 0x38]
        blocks = random_blocks(name, rng, len(special) + 2)
        for i, b in enumerate(special):
            blocks[i, :4] = [b, 0x38, b, 0x7E]
        blocks[len(special), :4] = [0x00, 0x00, 0x00, 0x00]
        blocks[len(special) + 1, :4] = [0x7E, 0x7E, 0x7F, 0x7F]
        return blocks
    fields = n_scale_fields(name)
    rows = []
    for field in range(fields):
        for e in F16_EDGES:
            vals = [realistic_f16(rng, 1) for _ in range(fields)]
            vals[field] = np.array([e], dtype=np.uint16)
            rows.append(vals)
    if fields == 2:
        # Both fields at the extremes at once.
        for a, b in [(0x7BFF, 0x7BFF), (0x7BFF, 0xFBFF), (0x0001, 0x8001), (0x0000, 0x8000)]:
            rows.append([np.array([a], np.uint16), np.array([b], np.uint16)])
    blocks = random_blocks(name, rng, len(rows))
    for i, vals in enumerate(rows):
        set_scales(name, blocks[i : i + 1], vals)
    return blocks


def nan_blocks(name: str, rng) -> "np.ndarray | None":
    """Blocks with NaN / Inf scales, or None where the type has no float scale."""
    if name in ("MXFP4", "NVFP4"):
        return None  # E8M0 / UE4M3 bytes: every pattern decodes to a finite scale
    fields = n_scale_fields(name)
    rows = []
    for field in range(fields):
        for e in F16_NONFINITE:
            vals = [realistic_f16(rng, 1) for _ in range(fields)]
            vals[field] = np.array([e], dtype=np.uint16)
            rows.append(vals)
    if fields == 2:
        # +Inf scale with a -Inf minimum: Inf - Inf and Inf * 0 generate NaNs.
        rows.append([np.array([0x7C00], np.uint16), np.array([0xFC00], np.uint16)])
    blocks = random_blocks(name, rng, len(rows))
    for i, vals in enumerate(rows):
        set_scales(name, blocks[i : i + 1], vals)
    return blocks


def quantized_blocks(name: str, rng, n: int) -> "np.ndarray | None":
    """Blocks made by gguf-py's own quantizer from N(0, 0.02) weights, where it has one."""
    elems = LAYOUTS[name][0]
    data = (rng.standard_normal(n * elems) * 0.02).astype(np.float32).reshape(n, elems)
    try:
        q = gguf.quants.quantize(data, getattr(T, name))
    except NotImplementedError:
        return None
    return np.ascontiguousarray(q.reshape(n, LAYOUTS[name][1]))


def make_quant(name: str) -> list[tuple[str, "np.ndarray", "np.ndarray", int]]:
    rng = np.random.default_rng(seed_for(name))
    elems, size, _ = LAYOUTS[name]
    total = BLOCKS_SMALL if elems < 256 else BLOCKS_SUPER
    parts = [edge_blocks(name, rng)]
    q = quantized_blocks(name, rng, 8 if elems == 256 else 32)
    if q is not None:
        parts.append(q)
    used = sum(len(p) for p in parts)
    parts.append(random_blocks(name, rng, total - used))
    blocks = np.concatenate(parts, axis=0)
    # Shuffle so that edge blocks sit at different offsets from the start.
    blocks = blocks[rng.permutation(len(blocks))]
    out = [(name, blocks, reference(name, blocks), elems)]
    nb = nan_blocks(name, rng)
    if nb is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            out.append((name + ".nan", nb, reference(name, nb), elems))
    return out


def reference(name: str, blocks: "np.ndarray") -> "np.ndarray":
    elems, size, _ = LAYOUTS.get(name, (1, blocks.shape[-1], ()))
    assert blocks.dtype == np.uint8 and blocks.shape[1] == size, name
    qtype = getattr(T, name)
    assert gguf.GGML_QUANT_SIZES[qtype] == (elems, size), (name, gguf.GGML_QUANT_SIZES[qtype])
    with np.errstate(invalid="ignore", over="ignore"):
        out = gguf.quants.dequantize(blocks.reshape(1, -1), qtype)
    out = np.ascontiguousarray(out, dtype=np.float32).reshape(-1)
    assert out.dtype == np.float32 and out.size == blocks.shape[0] * elems, name
    return out


def make_plain() -> list[tuple[str, "np.ndarray", "np.ndarray", int]]:
    out = []
    # F16 and BF16: every one of the 65536 bit patterns (subnormals, +-0,
    # +-Inf, signalling and quiet NaNs of both signs with every payload).
    # numpy's float16 -> float32 cast keeps a signalling NaN signalling
    # (0x7C01 -> 0x7F802000) and BF16 is a plain shift, so every NaN's bits
    # are data here, reproduced exactly by the tests.
    every = np.arange(0x10000, dtype=np.uint32).astype(np.uint16)
    for name in ("F16", "BF16"):
        raw = every.view(np.uint8).reshape(-1, 2)
        ref = gguf.quants.dequantize(raw.reshape(-1).copy(), getattr(T, name))
        out.append((name, raw, np.ascontiguousarray(ref, dtype=np.float32).reshape(-1), 1))
    # F32: random values and the special ones.
    rng = np.random.default_rng(seed_for("F32"))
    special = np.array(
        [
            0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF,
            0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFC12345, 0x7FFFFFFF,
            0x3F800000, 0xBF800000,
        ],
        dtype=np.uint32,
    )
    vals = (rng.standard_normal(4096 - special.size) * 0.02).astype(np.float32).view(np.uint32)
    bits = np.concatenate([special, vals])
    raw = bits.view(np.uint8).reshape(-1, 4)
    ref = gguf.quants.dequantize(raw.reshape(-1).copy(), T.F32)
    out.append(("F32", raw, np.ascontiguousarray(ref, dtype=np.float32).reshape(-1), 1))
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    global np, gguf, T
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allow-numpy-mismatch", action="store_true")
    args = ap.parse_args()
    gguf_v, numpy_v = check_versions(args.allow_numpy_mismatch)

    import numpy as np_mod
    import gguf as gguf_mod
    import gguf.quants  # noqa: F401

    np, gguf, T = np_mod, gguf_mod, gguf_mod.GGMLQuantizationType

    if sys.byteorder != "little":
        sys.exit("run this on a little-endian machine: the fixtures are little-endian")

    # Every type gguf-py can dequantize must have a layout here, and nothing else.
    supported = {t.name for t in gguf.quants._type_traits} - {"BF16"}
    missing = supported - set(LAYOUTS)
    extra = set(LAYOUTS) - supported
    if missing or extra:
        sys.exit(f"layout table out of date: missing {sorted(missing)}, no dequantizer {sorted(extra)}")

    fixtures = make_plain()
    for name in LAYOUTS:
        fixtures += make_quant(name)

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.suffix in (".blocks", ".f32") or old.name == "MANIFEST":
            old.unlink()

    lines = [
        "# Dequantization reference fixtures, written by scripts/make_fixtures.py; do not edit.",
        "# <file> <type> <blocks> <elements> <bytes> <sha256>",
        f"gguf {gguf_v}",
        f"numpy {numpy_v}",
    ]
    total = 0
    for stem, blocks, ref, elems in fixtures:
        name = stem.split(".")[0]
        n = blocks.shape[0]
        assert ref.size == n * elems, stem
        raw = np.ascontiguousarray(blocks).tobytes()
        f32 = ref.astype("<f4").tobytes()
        for fname, data, count in ((stem + ".blocks", raw, n * elems), (stem + ".f32", f32, n * elems)):
            (OUT / fname).write_bytes(data)
            lines.append(f"{fname} {name} {n} {count} {len(data)} {sha256(data)}")
            total += len(data)
    manifest = "\n".join(lines) + "\n"
    (OUT / "MANIFEST").write_text(manifest)
    total += len(manifest)
    print(f"wrote {len(fixtures)} fixtures, {total} bytes, into {OUT.relative_to(ROOT)}")
    if total > SIZE_BUDGET:
        sys.exit(f"fixtures take {total} bytes, over the {SIZE_BUDGET} byte budget")


if __name__ == "__main__":
    main()
