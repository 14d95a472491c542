"""Reading and writing rrmd checkpoints from PyTorch (docs/checkpoints.md, design.md section 3).

A checkpoint is a safetensors file, optionally wrapped in one zstd frame that records the content
size and a checksum. Tensor names are the state_dict keys of the twin in rrmd_models.py; the
`__metadata__` strings (`rrm.*`) say how to rebuild it. This module is shared by export_teacher.py
and load_rrmd.py:

  * read_checkpoint(path)  -> (tensors, metadata, info)   zstd detected by magic bytes, not by name
  * write_checkpoint(path, tensors, metadata, compress)   atomic (temp file + rename)
  * parse_metadata(meta)   -> ModelSpec, warnings          validates the rrm.* schema
  * infer_spec(tensors)    -> ModelSpec                    for plain state_dicts without rrm.* keys
  * load_into(model, tensors)                              strict load, num_batches_tracked fix-ups

zstd uses the `zstandard` package when it is installed and the `zstd` command-line tool otherwise.
Reading applies the same caps as rrmd: header <= 100 MB, content <= 4 GiB, zstd window <= 128 MiB.
"""
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import torch

import rrmd_models

try:  # optional; the zstd CLI is the fallback
    import zstandard
except ImportError:  # pragma: no cover - depends on the venv
    zstandard = None

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_HEADER = 100_000_000          # bytes of safetensors JSON header
MAX_CONTENT = 4 << 30             # bytes of safetensors content (plain file or decompressed)
MAX_WINDOW = 1 << 27              # zstd window (decoder memory), 128 MiB
MAX_PROJECTION = 65536            # largest projection head width rrmd builds
ZSTD_LEVEL = 3

FORMAT_VERSION = "1"
DATASETS = ("fashion-mnist", "mnist", "digits", "cifar10", "cifar100", "cifar100-coarse")
TRAINED_BY = ("natural", "pgd-at", "fgsm-rs", "rrm", "external")
KNOWN_KEYS = {"rrm.format", "rrm.arch", "rrm.width", "rrm.dataset", "rrm.num_classes",
              "rrm.input_shape", "rrm.mean", "rrm.std", "rrm.threat_model", "rrm.trained_by", "rrm.training",
              "rrm.seed", "rrm.teacher_sha256", "rrm.producer", "rrm.projection", "rrm.projection_bias"}
REQUIRED_KEYS = ("rrm.arch", "rrm.dataset", "rrm.num_classes", "rrm.input_shape", "rrm.mean",
                 "rrm.std")
_DECIMAL = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
THREAT_RE = re.compile(rf"^(linf|l2):({_DECIMAL}|\d+/\d+)$")


class CheckpointError(Exception):
    """The file or its metadata is not an rrmd checkpoint; the message says what and where."""


# ----------------------------------------------------------------------------- model spec
@dataclasses.dataclass
class ModelSpec:
    """Everything build() needs, plus the descriptive metadata."""
    arch: str
    in_channels: int
    height: int
    width: int
    num_classes: int
    width_mult: float = 1.0
    mean: list = None
    std: list = None
    dataset: str = None
    threat_model: str = "none"
    trained_by: str = None
    seed: int = None
    teacher_sha256: str = None
    producer: str = None
    source: str = "metadata"      # "metadata" or "inferred"
    projection: int = None        # width P of the projection head (rrm.projection), None for none
    projection_bias: bool = False  # whether it has projection.bias (rrm.projection_bias)

    def build(self):
        return rrmd_models.build(self.arch, self.in_channels, self.height, self.width,
                                 self.num_classes, self.width_mult, self.mean, self.std,
                                 projection=self.projection, projection_bias=self.projection_bias)

    def describe(self):
        mean = ",".join(f32_str(v) for v in self.mean or [0.0] * self.in_channels)
        std = ",".join(f32_str(v) for v in self.std or [1.0] * self.in_channels)
        head = f"projection {self.projection}  " if self.projection is not None else ""
        return (f"arch {self.arch}  width {decimal_str(self.width_mult)}  input "
                f"{self.in_channels}x{self.height}x{self.width}  classes {self.num_classes}  {head}"
                f"dataset {self.dataset or '?'}  mean {mean}  std {std}  threat_model "
                f"{self.threat_model}  trained_by {self.trained_by or '?'}  ({self.source})")


def f32_str(v):
    """Shortest decimal that reads back as the same float32 (0.4914, not 0.49140000343322754)."""
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


def decimal_str(v):
    """A width multiplier as a plain decimal: 1, 0.25, 0.3."""
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def parse_floats(text, what):
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise CheckpointError(f"{what} {text!r}: expected comma-separated decimals") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise CheckpointError(f"{what} {text!r}: expected finite decimals")
    return values


def parse_threat_model(text):
    """'none', 'linf:8/255', 'l2:0.5' -> (norm, eps) or None; raises on anything else."""
    if text == "none":
        return None
    m = THREAT_RE.match(text)
    if not m:
        raise CheckpointError(f"threat model {text!r}: expected none, linf:<eps> or l2:<eps> "
                              "(eps a decimal or a fraction such as 8/255)")
    num, _, den = m.group(2).partition("/")
    eps = float(num) / float(den) if den else float(num)
    if not (math.isfinite(eps) and eps > 0):
        raise CheckpointError(f"threat model {text!r}: eps must be a finite number > 0")
    return m.group(1), eps


def spec_metadata(spec, fmt_pt=True):
    """The rrm.* metadata (all strings) describing `spec`; validated by parse_metadata."""
    c = spec.in_channels
    meta = {
        "rrm.format": FORMAT_VERSION,
        "rrm.arch": spec.arch,
        "rrm.width": decimal_str(spec.width_mult),
        "rrm.dataset": spec.dataset,
        "rrm.num_classes": str(spec.num_classes),
        "rrm.input_shape": f"{c},{spec.height},{spec.width}",
        "rrm.mean": ",".join(f32_str(v) for v in rrmd_models.per_channel(spec.mean, 0.0, c)),
        "rrm.std": ",".join(f32_str(v) for v in rrmd_models.per_channel(spec.std, 1.0, c)),
        "rrm.threat_model": spec.threat_model or "none",
    }
    if fmt_pt:
        meta["format"] = "pt"
    for key, value in (("rrm.projection", spec.projection), ("rrm.projection_bias", "true" if spec.projection_bias else None),
                       ("rrm.trained_by", spec.trained_by), ("rrm.seed", spec.seed),
                       ("rrm.teacher_sha256", spec.teacher_sha256), ("rrm.producer", spec.producer)):
        if value is not None:
            meta[key] = str(value)
    parse_metadata(meta)  # never write what we would refuse to read
    return meta


def parse_metadata(meta):
    """Validates the rrm.* keys of `meta` (a str->str dict). Returns (ModelSpec, warnings).

    Raises CheckpointError for a missing required key or an invalid value; unknown rrm.* keys,
    a missing rrm.format and an unlisted dataset name are warnings.
    """
    warnings = []
    meta = meta or {}
    if not any(k.startswith("rrm.") for k in meta):
        raise CheckpointError("no rrm.* metadata (a plain state_dict; use infer_spec)")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"metadata lacks the required key(s) {', '.join(missing)}")
    fmt = meta.get("rrm.format")
    if fmt is None:
        warnings.append(f"rrm.format missing (expected {FORMAT_VERSION!r})")
    elif fmt != FORMAT_VERSION:
        raise CheckpointError(f"rrm.format {fmt!r}: this tool reads schema version {FORMAT_VERSION}")
    for key in sorted(meta):
        if key.startswith("rrm.") and key not in KNOWN_KEYS:
            warnings.append(f"unknown metadata key {key} = {meta[key]!r} (ignored)")
        elif not key.startswith("rrm.") and key != "format":
            warnings.append(f"non-rrm metadata key {key} (ignored)")
    if "format" in meta and meta["format"] != "pt":
        warnings.append(f"format = {meta['format']!r} (safetensors.torch writes 'pt')")

    arch = meta["rrm.arch"]
    if not rrmd_models.is_known(arch):
        raise CheckpointError(f"rrm.arch {arch!r}: known architectures are {', '.join(rrmd_models.ARCHS)}")
    try:
        width = float(meta.get("rrm.width", "1"))
    except ValueError:
        raise CheckpointError(f"rrm.width {meta['rrm.width']!r}: expected a decimal") from None
    if not (math.isfinite(width) and 0 < width <= 64):
        raise CheckpointError(f"rrm.width {meta['rrm.width']!r}: must be in (0, 64]")
    dataset = meta["rrm.dataset"]
    if dataset not in DATASETS:
        warnings.append(f"rrm.dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    try:
        k = int(meta["rrm.num_classes"])
    except ValueError:
        raise CheckpointError(f"rrm.num_classes {meta['rrm.num_classes']!r}: expected an integer") from None
    if not 2 <= k <= 100_000:
        raise CheckpointError(f"rrm.num_classes {k}: must be from 2 to 100000")
    try:
        shape = [int(x) for x in meta["rrm.input_shape"].split(",")]
    except ValueError:
        shape = []
    if len(shape) != 3 or not (1 <= shape[0] <= 64 and 1 <= shape[1] <= 4096 and 1 <= shape[2] <= 4096):
        raise CheckpointError(f"rrm.input_shape {meta['rrm.input_shape']!r}: expected C,H,W with "
                              "1 <= C <= 64 and 1 <= H, W <= 4096 (rrmd's limits)")
    c, h, w = shape
    mean = parse_floats(meta["rrm.mean"], "rrm.mean")
    std = parse_floats(meta["rrm.std"], "rrm.std")
    for name, values in (("rrm.mean", mean), ("rrm.std", std)):
        if len(values) != c:
            raise CheckpointError(f"{name} has {len(values)} value(s), input_shape has {c} channel(s)")
    if min(std) <= 0:
        raise CheckpointError(f"rrm.std {meta['rrm.std']!r}: every value must be > 0")
    threat = meta.get("rrm.threat_model", "none")
    parse_threat_model(threat)
    trained_by = meta.get("rrm.trained_by")
    if trained_by is not None and trained_by not in TRAINED_BY:
        warnings.append(f"rrm.trained_by {trained_by!r} is not one of {', '.join(TRAINED_BY)}")
    seed = meta.get("rrm.seed")
    if seed is not None:
        if not re.fullmatch(r"\d+", seed) or int(seed) >= 1 << 64:
            raise CheckpointError(f"rrm.seed {seed!r}: expected a non-negative 64-bit integer")
        seed = int(seed)
    sha = meta.get("rrm.teacher_sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise CheckpointError(f"rrm.teacher_sha256 {sha!r}: expected 64 hex digits")
    projection = meta.get("rrm.projection")
    if projection is not None:  # absent = no projection head; present, it must be a usable width
        if not re.fullmatch(r"\d+", projection) or not 1 <= int(projection) <= MAX_PROJECTION:
            raise CheckpointError(f"rrm.projection {projection!r}: expected an integer from 1 to "
                                  f"{MAX_PROJECTION} (the projection head's width), or no key for none")
        projection = int(projection)
    projection_bias = meta.get("rrm.projection_bias")
    if projection_bias is not None and (projection is None or projection_bias not in ("true", "false")):
        raise CheckpointError(f"rrm.projection_bias {projection_bias!r}: expected true or false, and only with rrm.projection")
    spec = ModelSpec(arch, c, h, w, k, width, mean, std, dataset, threat, trained_by, seed, sha,
                     meta.get("rrm.producer"), "metadata", projection, projection_bias == "true")
    return spec, warnings


# ----------------------------------------------------------------------------- zstd framing
def zstd_frame_info(data):
    """Parses a zstd frame header: {'content_size': int or None, 'checksum': bool, 'window': int}."""
    if len(data) < 6 or data[:4] != ZSTD_MAGIC:
        raise CheckpointError("not a zstd frame (magic bytes 28 B5 2F FD missing)")
    fhd = data[4]
    fcs_flag, single, checksum, dict_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
    if fhd & 0x08:
        raise CheckpointError("zstd frame header: reserved bit set")
    pos, window = 5, None
    if not single:
        wd = data[pos]
        pos += 1
        base = 1 << (10 + (wd >> 3))
        window = base + (base >> 3) * (wd & 7)
    pos += (0, 1, 2, 4)[dict_flag]
    size_bytes = (1 if single else 0, 2, 4, 8)[fcs_flag]
    content = None
    if size_bytes:
        if len(data) < pos + size_bytes:
            raise CheckpointError("zstd frame header truncated")
        content = int.from_bytes(data[pos:pos + size_bytes], "little") + (256 if size_bytes == 2 else 0)
    if single:
        window = content
    return {"content_size": content, "checksum": bool(checksum), "window": window,
            "dictionary": dict_flag != 0}


def zstd_compress(data, level=ZSTD_LEVEL):
    """One zstd frame with the content size and a checksum."""
    if zstandard is not None:
        return zstandard.ZstdCompressor(level=level, write_checksum=True,
                                        write_content_size=True).compress(data)
    if shutil.which("zstd") is None:
        raise CheckpointError("zstd compression needs the zstandard package or the zstd CLI")
    # From a file, not stdin: only then does the CLI know (and record) the content size.
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "x"), os.path.join(tmp, "x.zst")
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run(["zstd", "-q", f"-{level}", "--content-size", "--check", "-f", "-o", dst, src],
                       check=True)
        with open(dst, "rb") as f:
            return f.read()


def zstd_decompress(data, source, max_content=MAX_CONTENT):
    """Decodes one zstd frame with rrmd's caps (content size, window); the checksum is verified."""
    info = zstd_frame_info(data)
    if info["dictionary"]:
        raise CheckpointError(f"{source}: zstd frame needs a dictionary; rrmd checkpoints use none")
    if info["window"] is not None and info["window"] > MAX_WINDOW:
        raise CheckpointError(f"{source}: zstd window {info['window']} bytes exceeds {MAX_WINDOW} "
                              "(recompress without --long)")
    if info["content_size"] is not None and info["content_size"] > max_content:
        raise CheckpointError(f"{source}: zstd frame declares {info['content_size']} bytes, over "
                              f"the {max_content}-byte cap")
    if zstandard is not None:
        dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
        if info["content_size"] is not None:
            dobj = dctx.decompressobj()
            try:
                out = dobj.decompress(data)
            except zstandard.ZstdError as e:
                raise CheckpointError(f"{source}: zstd: {e}") from None
            if not dobj.eof:
                raise CheckpointError(f"{source}: zstd frame truncated")
            if dobj.unused_data:
                raise CheckpointError(f"{source}: {len(dobj.unused_data)} bytes after the zstd "
                                      "frame (rrmd expects exactly one frame)")
            if len(out) != info["content_size"]:
                raise CheckpointError(f"{source}: zstd content is {len(out)} bytes, header says "
                                      f"{info['content_size']}")
            return out
        chunks, total = [], 0
        try:
            with dctx.stream_reader(data, read_across_frames=False) as reader:
                while True:
                    chunk = reader.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > max_content:
                        raise CheckpointError(f"{source}: decompresses to more than {max_content} bytes")
                    chunks.append(chunk)
        except zstandard.ZstdError as e:
            raise CheckpointError(f"{source}: zstd: {e}") from None
        return b"".join(chunks)
    if shutil.which("zstd") is None:
        raise CheckpointError(f"{source}: zstd-compressed; install zstandard (pip) or the zstd CLI")
    # The CLI verifies the checksum and refuses windows above --memory; output is read in
    # chunks so a frame without a declared size still cannot exceed the cap.
    with tempfile.NamedTemporaryFile(suffix=".zst") as src:
        src.write(data)
        src.flush()
        proc = subprocess.Popen(["zstd", "-d", "-c", "-q", f"--memory={MAX_WINDOW >> 20}MB", "--", src.name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        chunks, total = [], 0
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_content:
                proc.kill()
                proc.wait()
                raise CheckpointError(f"{source}: decompresses to more than {max_content} bytes")
            chunks.append(chunk)
        errtext = proc.stderr.read()
        proc.wait()
    if proc.returncode != 0:
        raise CheckpointError(f"{source}: zstd -d failed: {errtext.decode(errors='replace').strip()}")
    out = b"".join(chunks)
    if info["content_size"] is not None and len(out) != info["content_size"]:
        raise CheckpointError(f"{source}: zstd content is {len(out)} bytes, header says "
                              f"{info['content_size']} (more than one frame?)")
    return out


# ----------------------------------------------------------------------------- safetensors I/O
def safetensors_header(content, source):
    """The JSON header of safetensors bytes, with the 100 MB cap."""
    if len(content) < 8:
        raise CheckpointError(f"{source}: {len(content)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", content[:8])
    if n > MAX_HEADER or n > len(content) - 8:
        raise CheckpointError(f"{source}: header length {n} exceeds the 100 MB cap or the file")
    try:
        header = json.loads(content[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{source}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{source}: header is not a JSON object")
    return header


def read_checkpoint(path):
    """Reads a .safetensors or .safetensors.zst (by content). Returns (tensors, metadata, info)."""
    size = os.path.getsize(path)
    if size > MAX_CONTENT:
        raise CheckpointError(f"{path}: {size} bytes, over the {MAX_CONTENT}-byte cap")
    with open(path, "rb") as f:
        raw = f.read()
    info = {"file_bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "zstd": None}
    content = raw
    if raw[:4] == ZSTD_MAGIC:
        info["zstd"] = zstd_frame_info(raw)
        content = zstd_decompress(raw, path)
    info["content_bytes"] = len(content)
    header = safetensors_header(content, path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckpointError(f"{path}: __metadata__ must map strings to strings")
    from safetensors.torch import load as st_load
    try:
        tensors = st_load(content)
    except Exception as e:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"{path}: not a valid safetensors file: {e}") from None
    return tensors, meta, info


def safetensors_bytes(tensors, metadata=None):
    from safetensors.torch import save as st_save
    return st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)


def write_checkpoint(path, tensors, metadata=None, compress=False):
    """Writes safetensors (optionally one zstd frame) atomically. Returns the bytes written."""
    data = safetensors_bytes(tensors, metadata)
    if compress:
        data = zstd_compress(data)
        info = zstd_frame_info(data)
        assert info["checksum"] and info["content_size"] is not None, info
    write_atomic(path, data)
    return data


def write_atomic(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- loading into a twin
def load_into(model, tensors):
    """Strict load_state_dict. num_batches_tracked is converted to I64 shape [] (with a note) if
    the file stores another integer/float dtype or shape [1]; other dtype differences are
    converted with a note. Returns the list of notes. Raises CheckpointError listing
    missing/unexpected keys and shape mismatches."""
    notes = []
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = []
    state = {}
    for key, ref in expected.items():
        if key not in tensors:
            continue
        t = tensors[key]
        if key.endswith("num_batches_tracked"):
            if t.numel() != 1:
                shapes.append(f"{key}: {list(t.shape)} (expected a scalar)")
                continue
            if t.dtype != torch.int64 or t.dim() != 0:
                v = t.reshape(()).item()
                if v != int(v) or v < 0:
                    shapes.append(f"{key}: value {v} is not a count")
                    continue
                notes.append(f"{key}: {str(t.dtype).removeprefix('torch.')} {list(t.shape)} "
                             "converted to int64 [] (the format says I64 shape [])")
                t = torch.tensor(int(v), dtype=torch.int64)
        elif t.shape != ref.shape:
            shapes.append(f"{key}: file {list(t.shape)}, model {list(ref.shape)}")
            continue
        elif t.dtype != ref.dtype:
            notes.append(f"{key}: {str(t.dtype).removeprefix('torch.')} converted to "
                         f"{str(ref.dtype).removeprefix('torch.')}")
            t = t.to(ref.dtype)
        state[key] = t
    if missing or unexpected or shapes:
        parts = []
        for what, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"{what}: {shown}")
        raise CheckpointError("strict load failed; " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return notes


def nonfinite_tensors(tensors):
    return sorted(k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all())


# ----------------------------------------------------------------------------- plain state_dicts
# Per architecture: a tensor whose dim 0 is ch(base), that base, the tensor whose dim 1 is the
# input channel count (or None), and the final Linear.
_ANCHORS = {
    "mlp": ("fc1.weight", 256, None, "fc.weight"),
    "cnn-small": ("conv1.weight", 32, "conv1.weight", "fc.weight"),
    "resnet20": ("conv1.weight", 16, "conv1.weight", "fc.weight"),
    "resnet18": ("conv1.weight", 64, "conv1.weight", "fc.weight"),
    "vgg11": ("features.0.weight", 64, "features.0.weight", "classifier.weight"),
    "mobilenetv2": ("conv1.weight", 32, "conv1.weight", "fc.weight"),
    "preactresnet18": ("conv1.weight", 64, "conv1.weight", "linear.weight"),
    "resnet50": ("conv1.weight", 64, "conv1.weight", "linear.weight"),
}


def _wide_anchor(got):
    """The wide ResNet a state_dict describes (depth from block1's blocks, widen factor from
    block3's width over the stem's), as an _ANCHORS entry, or None."""
    if "block3.layer.0.conv1.weight" not in got or "conv1.weight" not in got:
        return None
    blocks = 0
    while f"block1.layer.{blocks}.conv1.weight" in got:
        blocks += 1
    widen = round(got["block3.layer.0.conv1.weight"][0] / got["conv1.weight"][0] / 4)
    arch = f"wideresnet-{6 * blocks + 4}-{widen}"
    if blocks == 0 or rrmd_models.wide_resnet_shape(arch) is None:
        return None
    return {arch: ("conv1.weight", 16, "conv1.weight", "fc.weight")}


def _is_square(n):
    r = math.isqrt(n)
    return r if r * r == n else None


def _shapes(spec):
    with torch.device("meta"):
        model = spec.build()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _width_candidates(n, base):
    """Widths w with max(1, round(base * w)) == n, simplest decimals first."""
    lo, hi = (n - 0.5) / base, (n + 0.5) / base
    if n == 1:
        lo = 1e-6
    seen, out = set(), []
    for digits in range(0, 5):
        step = 10 ** -digits
        k = math.ceil(lo / step)
        while k * step <= hi and len(out) < 400:
            w = round(k * step, digits)
            if w > 0 and w not in seen and max(1, round(base * w)) == n:
                seen.add(w)
                out.append(w)
            k += 1
    return out


def infer_spec(tensors, input_shape=None):
    """Identifies the architecture, width, input shape and class count of a plain state_dict
    from its tensor names and shapes. Raises CheckpointError unless exactly one architecture fits.

    Image size cannot always be recovered: mlp needs C*H*W (assumed square, 1 or 3 channels),
    cnn-small H//4 and W//4 (assumed square, H = 4*(H//4)); the convolutional networks' tensors do
    not depend on it (32x32 is assumed). Pass input_shape=(C, H, W) to override. mean/std are
    0/1 (they are not in a state_dict). A `projection.weight` [P, D] (an RRM student's projection
    head, the same for every architecture) gives the projection width P."""
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    projection = None
    if "projection.weight" in got:
        if len(got["projection.weight"]) != 2 or not 1 <= got["projection.weight"][0] <= MAX_PROJECTION:
            raise CheckpointError(f"projection.weight has shape {list(got['projection.weight'])}; "
                                  "a projection head is a [P, D] matrix")
        projection = got["projection.weight"][0]
    fits = []
    for arch, (anchor, base, cin_key, head) in {**_ANCHORS, **(_wide_anchor(got) or {})}.items():
        if anchor not in got or head not in got or len(got[head]) != 2:
            continue
        k = got[head][0]
        if input_shape is not None:
            c, h, w = input_shape
        elif arch == "mlp":
            n_in = got["fc1.weight"][1]
            if _is_square(n_in):
                c, h, w = 1, _is_square(n_in), _is_square(n_in)
            elif n_in % 3 == 0 and _is_square(n_in // 3):
                c, h, w = 3, _is_square(n_in // 3), _is_square(n_in // 3)
            else:
                continue
        elif arch == "cnn-small":
            if "conv2.weight" not in got or "fc1.weight" not in got:
                continue
            c = got[cin_key][1]
            q, r = divmod(got["fc1.weight"][1], got["conv2.weight"][0])
            if r or not _is_square(q):
                continue
            h = w = 4 * _is_square(q)
        else:
            c, h, w = got[cin_key][1], 32, 32
        if k < 2 or c < 1:
            continue
        for i, width_mult in enumerate(_width_candidates(got[anchor][0], base)):
            spec = ModelSpec(arch, c, h, w, k, width_mult, source="inferred", projection=projection,
                             projection_bias=projection is not None and "projection.bias" in got)
            try:
                shapes = _shapes(spec)
            except Exception:
                continue
            if i == 0 and set(shapes) != set(got):
                break  # the tensor names of an architecture do not depend on the width
            if shapes == got:
                fits.append(spec)
                break
    if len(fits) != 1:
        what = "no architecture" if not fits else "more than one architecture (" + \
            ", ".join(s.arch for s in fits) + ")"
        raise CheckpointError(f"tensor names and shapes match {what} of the registry "
                              f"({', '.join(rrmd_models.ARCHS)})")
    return fits[0]
