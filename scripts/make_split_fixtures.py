#!/usr/bin/env python3
"""Writes the split-model fixtures in tests/fixtures/split/ with gguf-py's
own writer (GGUFWriter(split_max_tensors=2)), as llama.cpp's conversion
scripts split models, checked by tests/split.rs:

- gguf-py-0000k-of-00003.gguf: 5 tensors, at most 2 per part;
- gguf-py-small-first-0000k-of-00004.gguf: the same with small_first_shard
  (the first part holds metadata only, as gguf-split --no-tensor-first-split).

Tensor i is named t{i} and holds float32 values i * 1000 + 0, 1, 2, ... (the
test recomputes them). Deterministic: a rerun with the pinned gguf version
changes no file.

    pip install -r scripts/requirements.txt && python3 scripts/make_split_fixtures.py
"""
from pathlib import Path

import gguf
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "split"
SHAPES = [(4, 8), (16,), (2, 3, 4), (32,), (8, 8)]


def write(stem: str, small_first_shard: bool) -> None:
    w = gguf.GGUFWriter(OUT / f"{stem}.gguf", "llama", split_max_tensors=2,
                        small_first_shard=small_first_shard)
    w.add_name("split fixture")
    w.add_uint32("fixture.answer", 42)
    for i, shape in enumerate(SHAPES):
        n = int(np.prod(shape))
        w.add_tensor(f"t{i}", (i * 1000 + np.arange(n, dtype=np.float32)).reshape(shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write("gguf-py", False)
    write("gguf-py-small-first", True)
    for path in sorted(OUT.glob("*.gguf")):
        print(path.name, path.stat().st_size)


if __name__ == "__main__":
    main()
