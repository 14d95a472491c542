#!/usr/bin/env python3
"""Writes a checkpoint that is BASE with the tensors whose names start with PREFIX taken from DONOR.

Usage: python3 Tools/study/swap_tensors.py BASE DONOR PREFIX OUT   (plain .safetensors in and out)

A study tool (docs/rrm-study.md): a student's body with its teacher's classifier (PREFIX "fc.")
tells whether the student's weakness lies in its representation or in its own classifier. It
needs only the Python standard library; decompress .zst files with `zstd -d` first.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
    return meta, tensors


def write(path, meta, tensors):
    header, chunks, offset = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    base, donor, prefix, out = sys.argv[1:5]
    meta, tensors = read(base)
    _, given = read(donor)
    swapped = [k for k in given if k.startswith(prefix)]
    for k in swapped:
        if k not in tensors or tensors[k][1] != given[k][1]:
            sys.exit(f"{k}: missing from {base} or of another shape")
        tensors[k] = given[k]
    meta["rrm.training"] = meta.get("rrm.training", "") + f"; {prefix}* from {donor}"
    write(out, meta, tensors)
    print(f"{out}: {len(swapped)} tensors from {donor}: {', '.join(swapped)}")


if __name__ == "__main__":
    main()
