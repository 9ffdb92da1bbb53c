"""The model file: where the shipped one lives, its checksum, and what a model must look like.

The ONNX file ships inside the package (``ocr_denoise/models/denoiser.onnx``) so a
wheel installed into a fresh environment works with no checkout around it.
``exported/denoiser.onnx`` in the repository is a link to the same file.

Next to a model may sit ``<model>.sha256`` (``sha256sum`` format), written by
``write_checksum`` at the end of every export. When it exists the model's bytes
must match it, so a truncated download, a half-copied file or a model replaced
without re-export is refused before onnxruntime ever parses it.

A model exported by ``train/export.py`` also records a checksum of its own bytes
in its metadata (``content_sha256``, ``seal_model``): the SHA-256 of the file with
that value written as 64 zeros. It travels inside the file, so a copy without its
``.sha256`` is still verified, and one byte changed anywhere (weights, graph,
metadata) is refused instead of loading and returning a different page. The
shipped model's SHA-256 is also in the package (``SHIPPED_SHA256``), so it is
verified even where its ``.sha256`` was lost.

Everything here is about the file and its declared interface; building and
running the onnxruntime session is ``session.py``'s job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .context import NAME as _QUARTER
from .errors import ModelError, ModelNotFoundError
from .flatten import NAME as _FLATTEN
from .rescale import CUBIC as _CUBIC

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "denoiser.onnx"
#: Models shipped in the package, by the name ``model=`` (and ``--model``) takes in
#: place of a path, rembg-style; the default first. A name wins over a file of that
#: name in the working directory (write ``./denoise`` for the file).
SHIPPED_MODELS: dict[str, str] = {"denoise": DEFAULT_MODEL_NAME}
DEFAULT_MODEL = "denoise"
CHECKSUM_SUFFIX = ".sha256"
#: protobuf cannot hold a message over 2 GiB, so no larger file is an ONNX model
#: we could load from bytes; refusing it up front avoids reading gigabytes.
MAX_MODEL_BYTES = 2**31 - 1
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
#: SHA-256 of the shipped model, the same as ``denoiser.onnx.sha256`` (a test
#: holds them together): the shipped model is verified even without that file.
SHIPPED_SHA256 = "c4cd65fa11abd42b753f001e05ed04232994aae55111f88bd454e633c5223c63"
#: SHA-256 of every shipped model file, by file name (each equal to its ``.sha256``).
SHIPPED_CHECKSUMS: dict[str, str] = {DEFAULT_MODEL_NAME: SHIPPED_SHA256}
#: Metadata key of the checksum a model records of its own bytes (``seal_model``).
SEAL_KEY = "content_sha256"
#: How the seal's entry looks in the file: protobuf field 1 (key), field 2 (value,
#: 64 bytes), so it is found in the bytes without an ONNX parser.
_SEAL_PREFIX = (b"\x0a" + bytes([len(SEAL_KEY)]) + SEAL_KEY.encode("ascii") + b"\x12\x40")
_SEAL_BLANK = b"0" * 64
#: Notes already logged, so a process says each once per model, however often it loads.
_said: set[tuple[str, str]] = set()
_LAYOUTS = ("NHWC", "NCHW")


@dataclass(frozen=True)
class ModelSpec:
    """What the denoiser needs to know about a model's interface.

    ``patch`` is the side of the square patches it reads; ``layout`` is
    ``"NHWC"`` for (N, P, P, 1) tensors or ``"NCHW"`` for (N, 1, P, P).
    ``preprocess`` is what the page goes through before tiling: ``"none"`` or
    ``"flatten-v1"`` (``ocr_denoise.flatten``), from the metadata key of that name.
    ``context`` is what the model reads beside each patch, in a second input named
    ``context`` of the same shape: ``"none"`` or ``"quarter-v1"``
    (``ocr_denoise.context``), from the metadata key of that name.
    ``input_name`` is the name of the patch input.
    ``scale`` is the output's side over the patch's: 1 for a denoiser, k for an
    enlargement model (metadata ``scale``), whose output is kP x kP and which
    reads, in a second input named ``base`` of that shape, the page's
    interpolated enlargement cut at the output window; ``base`` names that
    interpolation (metadata ``base``, ``"cubic-v1"``: ``rescale.cubic_windows``),
    ``"none"`` for a denoiser.
    """

    patch: int
    layout: str
    preprocess: str = "none"
    context: str = "none"
    input_name: str = "noisy"
    scale: int = 1
    base: str = "none"

    def shape(self, n: int) -> tuple[int, int, int, int]:
        """The 4-D tensor shape of a batch of ``n`` patches in this layout."""
        p = self.patch
        return (n, p, p, 1) if self.layout == "NHWC" else (n, 1, p, p)

    def out_shape(self, n: int) -> tuple[int, int, int, int]:
        """The 4-D shape of the model's output (and of ``base``) for ``n`` patches."""
        q = self.scale * self.patch
        return (n, q, q, 1) if self.layout == "NHWC" else (n, 1, q, q)


def shipped_model_path(name: str) -> Path:
    """Filesystem path of the shipped model called ``name`` (a key of
    ``SHIPPED_MODELS``); ``KeyError`` for another name."""
    return Path(str(resources.files("ocr_denoise") / "models" / SHIPPED_MODELS[name]))


def default_model_path() -> Path:
    """Filesystem path of the model shipped with the package as the default."""
    return shipped_model_path(DEFAULT_MODEL)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """The model file ``model`` means: None, the default model; a name in
    ``SHIPPED_MODELS``, that shipped model; anything else, a path."""
    if model is None:
        return default_model_path()
    if isinstance(model, str) and model in SHIPPED_MODELS:
        return shipped_model_path(model)
    return Path(model)


def shipped_name(path: str | os.PathLike[str]) -> str | None:
    """The name of the shipped model ``path`` is (a link to), or None."""
    try:
        real = Path(path).resolve()
        return next((n for n in SHIPPED_MODELS if shipped_model_path(n).resolve() == real),
                    None)
    except OSError:
        return None


def is_shipped_model(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (a link to) one of the shipped models."""
    return shipped_name(path) is not None


def checksum_path(model_path: str | os.PathLike[str]) -> Path:
    """``<model>.sha256`` beside the real file (links such as exported/ are followed)."""
    real = Path(model_path).resolve()
    return real.with_name(real.name + CHECKSUM_SUFFIX)


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def write_checksum(model_path: str | os.PathLike[str]) -> Path:
    """Write ``<model>.sha256`` for the model file as it is now; returns its path.

    The line is in ``sha256sum`` format (``<hex>  <file name>``) so
    ``sha256sum -c denoiser.onnx.sha256`` also works from the model's folder. The
    file is replaced atomically, so a reader never sees half a checksum. Call it
    after every (re-)export: a model whose bytes differ from its checksum file is
    refused at load time.
    """
    real = Path(model_path).resolve()
    digest = sha256_hex(real.read_bytes())
    target = checksum_path(real)
    # 0644: package data everyone reads, whatever the umask of whoever exported it
    atomic_write(target, f"{digest}  {real.name}\n".encode("ascii"), mode=0o644)
    return target


def expected_checksum(model_path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 recorded in ``<model>.sha256``, or ``None`` if there is no such file.

    Raises ``ModelError`` if the checksum file exists but does not hold a 64-digit
    hex digest (a damaged checksum must not pass as "no checksum").
    """
    target = checksum_path(model_path)
    try:
        text = target.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ModelError(f"{target}: cannot read checksum file: {e.strerror or e}") from e
    token = text.split()[0] if text.split() else ""
    if not _HEX64.fullmatch(token):
        raise ModelError(
            f"{target}: malformed checksum file; expected a 64-digit hex SHA-256, "
            f"got {token[:80]!r}"
        )
    return token.lower()


def read_model_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a model file and check it against every checksum it has.

    Returns the bytes onnxruntime should load, so what was verified is exactly
    what runs. Raises ``ModelNotFoundError`` for a missing path and
    ``ModelError`` for anything that is not a regular, readable, non-empty file
    under 2 GiB, whose SHA-256 differs from its ``.sha256`` file, or whose
    bytes differ from the checksum it records of itself (``check_seal``). The
    shipped model without its ``.sha256`` (an install that left it out) is
    checked against ``SHIPPED_SHA256``, with one warning per process.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelNotFoundError(f"{p}: model file not found") from None
    except OSError as e:
        raise ModelError(f"{p}: cannot access model file: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ModelError(f"{p}: model path is {kind}; expected an .onnx file")
    if st.st_size == 0:
        raise ModelError(f"{p}: model file is empty (0 bytes)")
    if st.st_size > MAX_MODEL_BYTES:
        raise ModelError(
            f"{p}: model file is {st.st_size} bytes, over the 2 GiB an ONNX protobuf "
            "can hold; this is not a denoiser model"
        )
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelError(f"{p}: cannot read model file: {e.strerror or e}") from e
    want = expected_checksum(p)
    name = shipped_name(p) if want is None else None
    if name is not None:
        _say_once(p, f"{p}: no checksum file {checksum_path(p).name}; verified against the "
                  "shipped model's SHA-256 recorded in the package")
        shipped = SHIPPED_CHECKSUMS[SHIPPED_MODELS[name]]
        if sha256_hex(data) != shipped:
            raise ModelError(
                f"{p}: SHA-256 {sha256_hex(data)} is not the shipped model's "
                f"({shipped}); the model file is damaged or was replaced")
    elif want is not None:
        got = sha256_hex(data)
        if got != want:
            raise ModelError(
                f"{p}: SHA-256 {got} does not match {checksum_path(p).name} ({want}); "
                "the model file is damaged or was replaced without re-export"
            )
    check_seal(p, data)
    return data


def _say_once(path: Path, message: str) -> None:
    """Log ``message`` as a warning the first time this process says it of ``path``."""
    key = (str(path.resolve()), message)
    if key not in _said:
        _said.add(key)
        logger.warning("%s", message)


def check_seal(path: str | os.PathLike[str], data: bytes) -> bool:
    """Check the checksum a model records of its own bytes (``content_sha256``).

    ``data`` is the model file's bytes. Returns False for a model that records
    none (exported before 0.2.0, or by other tools), True when it matches.
    Raises ``ModelError`` naming ``path`` when the recorded value is not the
    SHA-256 of ``data`` with it blanked (the file was damaged, anywhere), or when
    the entry appears more than once or is not 64 hex digits.
    """
    at = data.find(_SEAL_PREFIX)
    if at < 0:
        return False
    if data.find(_SEAL_PREFIX, at + 1) >= 0:
        raise ModelError(f"{path}: records {SEAL_KEY} more than once; the model file is "
                         "damaged")
    start = at + len(_SEAL_PREFIX)
    recorded = data[start : start + 64]
    blanked = data[:start] + _SEAL_BLANK + data[start + 64 :]
    if not _HEX64.fullmatch(recorded.decode("ascii", "replace")) or (
            sha256_hex(blanked) != recorded.decode("ascii").lower()):
        raise ModelError(f"{path}: its bytes do not match the checksum it records "
                         f"(metadata {SEAL_KEY}); the model file is damaged, or was changed "
                         "without resealing it (ocr_denoise.model.seal_model)")
    return True


def seal_model(model_path: str | os.PathLike[str]) -> str:
    """Record in the model's metadata a checksum of its own bytes; returns it.

    Adds (or replaces) the metadata entry ``content_sha256``: the SHA-256 of the
    file serialised with that value as 64 zeros, then written in place of the
    zeros, so ``check_seal`` can verify any copy of the file with no ``.sha256``
    beside it. Needs the ``onnx`` package (export time only). The file is
    replaced atomically; write its ``.sha256`` (``write_checksum``) afterwards.
    """
    import onnx

    real = Path(model_path).resolve()
    proto = onnx.load_from_string(real.read_bytes())
    kept = [e for e in proto.metadata_props if e.key != SEAL_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=SEAL_KEY, value=_SEAL_BLANK.decode("ascii"))
    data = proto.SerializeToString()
    at = data.find(_SEAL_PREFIX)
    if at < 0 or data.find(_SEAL_PREFIX, at + 1) >= 0:  # pragma: no cover - protobuf's layout
        raise ModelError(f"{real}: cannot place {SEAL_KEY} in the serialised model")
    digest = sha256_hex(data)
    start = at + len(_SEAL_PREFIX)
    sealed = data[:start] + digest.encode("ascii") + data[start + 64 :]
    atomic_write(real, sealed, mode=0o644)
    return digest


def _dims(shape: Sequence[Any]) -> list[int | None]:
    """onnxruntime shape -> list of ints, None for symbolic/unknown dimensions."""
    return [d if isinstance(d, int) and d >= 0 else None for d in shape]


#: Page preprocessing a model may ask for in its ``preprocess`` metadata.
PREPROCESSING = ("none", _FLATTEN)
#: Page context a model may read (``context`` metadata), and its input's name.
CONTEXTS = ("none", _QUARTER)
CONTEXT_INPUT = "context"
#: The enlargements an enlargement model may add its correction to (metadata ``base``),
#: and the name of the input that carries it.
BASES = ("none", _CUBIC)
BASE_INPUT = "base"


def read_model_version(path: str | os.PathLike[str]) -> str | None:
    """The ``model_version`` a model file records in its ONNX metadata (e.g.
    ``"v8"``), or None if it records none. Reads the file as
    ``read_model_bytes`` does (``ModelError`` if it is missing or damaged) and
    parses it with onnxruntime on the CPU; builds no ``Denoiser``.
    """
    import onnxruntime as ort

    data = read_model_bytes(path)
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"{path}: onnxruntime cannot load it as an ONNX model: {e}") from e
    return session.get_modelmeta().custom_metadata_map.get("model_version")


def check_interface(path: str | os.PathLike[str], inputs: Sequence[Any],
                    outputs: Sequence[Any], metadata: Mapping[str, str]) -> ModelSpec:
    """Check a model's declared inputs, outputs and metadata fit the denoiser.

    ``inputs``/``outputs`` are onnxruntime ``NodeArg``s (``.name``, ``.shape``,
    ``.type``); ``metadata`` is the model's custom metadata map. A denoiser has
    one float32 input of shape (N, P, P, 1) or (N, 1, P, P) with a dynamic batch
    N and a fixed square P >= 2, and one float32 output of the same shape. A
    model whose metadata names a ``context`` has a second input, ``context``, of
    the same type and shape. If the metadata records ``patch_size`` or ``layout``
    they must agree with the input. Returns the interface as a ``ModelSpec``;
    raises ``ModelError`` naming the path and the mismatch otherwise.
    """
    def bad(problem: str) -> ModelError:
        return ModelError(f"{path}: {problem}")

    ctx = metadata.get("context", "none").strip() or "none"
    if ctx not in CONTEXTS:
        raise bad(f"metadata context={ctx!r} is not one this version of ocr-denoise "
                  f"knows ({', '.join(CONTEXTS)}); the model needs a newer ocr-denoise")
    base = metadata.get("base", "none").strip() or "none"
    scale_text = metadata.get("scale", "1").strip() or "1"
    if base not in BASES:
        raise bad(f"metadata base={base!r} is not one this version of ocr-denoise "
                  f"knows ({', '.join(BASES)}); the model needs a newer ocr-denoise")
    if not scale_text.isdigit() or int(scale_text) < 1:
        raise bad(f"metadata scale={scale_text!r}; expected an integer >= 1")
    scale = int(scale_text)
    if (scale > 1) != (base != "none"):
        raise bad(f"metadata scale={scale} with base={base!r}: an enlargement model "
                  "(scale >= 2) reads its base enlargement, and only it does")
    if base != "none" and ctx != "none":
        raise bad(f"metadata context={ctx!r} and base={base!r}: a model reads one or the "
                  "other")
    if base != "none":
        return _check_enlarger(bad, inputs, outputs, metadata, scale, base)
    n_in = 1 if ctx == "none" else 2
    if len(inputs) != n_in or len(outputs) != 1:
        why = ("" if ctx == "none"
               else f" (metadata context={ctx!r}: the patch and {CONTEXT_INPUT!r})")
        raise bad(f"model has {len(inputs)} inputs and {len(outputs)} outputs; "
                  f"expected exactly {n_in} input{'s' if n_in > 1 else ''}{why} and 1 output")
    if n_in == 2:
        named = [i for i in inputs if i.name == CONTEXT_INPUT]
        if len(named) != 1:
            raise bad(f"metadata context={ctx!r} but no input is named {CONTEXT_INPUT!r} "
                      f"(inputs: {[i.name for i in inputs]})")
        inp = next(i for i in inputs if i.name != CONTEXT_INPUT)
        if named[0].type != inp.type or _dims(named[0].shape) != _dims(inp.shape):
            raise bad(f"input {CONTEXT_INPUT!r} is {named[0].type} {list(named[0].shape)}; "
                      f"expected the patch input's {inp.type} {list(inp.shape)}")
    else:
        inp = inputs[0]
    out = outputs[0]
    for role, arg in (("input", inp), ("output", out)):
        if arg.type != "tensor(float)":
            raise bad(f"{role} {arg.name!r} is {arg.type}; expected tensor(float)")
    shape = _dims(inp.shape)
    if len(shape) != 4:
        raise bad(f"input {inp.name!r} has shape {list(inp.shape)} ({len(shape)}-D); "
                  "expected 4-D (N, P, P, 1) or (N, 1, P, P)")
    if shape[0] is not None:
        raise bad(f"input {inp.name!r} has a fixed batch size {shape[0]}; expected a "
                  "dynamic batch dimension")
    if shape[3] == 1 and shape[1] != 1:
        layout, (h, w) = "NHWC", shape[1:3]
    elif shape[1] == 1:
        layout, (h, w) = "NCHW", shape[2:4]
    else:
        raise bad(f"input {inp.name!r} has shape {list(inp.shape)}; expected one gray "
                  "channel, (N, P, P, 1) or (N, 1, P, P)")
    if h is None or w is None:
        raise bad(f"input {inp.name!r} has shape {list(inp.shape)}; expected a fixed "
                  "patch height and width")
    if h != w:
        raise bad(f"input {inp.name!r} has non-square {h}x{w} patches; expected P x P")
    if h < 2:
        raise bad(f"input {inp.name!r} has {h}x{w} patches; expected P >= 2")
    spec = ModelSpec(patch=h, layout=layout)
    want = list(spec.shape(0))[1:]
    oshape = _dims(out.shape)
    if len(oshape) != 4 or any(o is not None and o != e for o, e in zip(oshape[1:], want)):
        raise bad(f"output {out.name!r} has shape {list(out.shape)}; expected the input's "
                  f"shape {['N', *want]}")
    meta_patch = metadata.get("patch_size")
    if meta_patch is not None and meta_patch.strip() != str(spec.patch):
        raise bad(f"metadata patch_size={meta_patch!r} but the input takes "
                  f"{spec.patch}x{spec.patch} patches")
    meta_layout = metadata.get("layout")
    if meta_layout is not None and meta_layout.strip().upper() != spec.layout:
        raise bad(f"metadata layout={meta_layout!r} but the input shape "
                  f"{list(inp.shape)} is {spec.layout}")
    prep = metadata.get("preprocess", "none").strip() or "none"
    if prep not in PREPROCESSING:
        raise bad(f"metadata preprocess={prep!r} is not one this version of ocr-denoise "
                  f"knows ({', '.join(PREPROCESSING)}); the model needs a newer ocr-denoise")
    return ModelSpec(patch=spec.patch, layout=spec.layout, preprocess=prep, context=ctx,
                     input_name=inp.name)


def _check_enlarger(bad: Any, inputs: Sequence[Any], outputs: Sequence[Any],
                    metadata: Mapping[str, str], scale: int, base: str) -> ModelSpec:
    """``check_interface`` for an enlargement model (metadata ``base`` and
    ``scale`` k >= 2): inputs ``noisy`` (N, 1, P, P) and ``base`` (N, 1, kP, kP),
    output (N, 1, kP, kP), float32, N dynamic, NCHW (what ``train/export.py`` writes)."""
    if len(inputs) != 2 or len(outputs) != 1:
        raise bad(f"model has {len(inputs)} inputs and {len(outputs)} outputs; an "
                  f"enlargement model (metadata base={base!r}) has 2 inputs, the patch and "
                  f"{BASE_INPUT!r}, and 1 output")
    named = {i.name: i for i in inputs}
    if BASE_INPUT not in named or len(named) != 2:
        raise bad(f"metadata base={base!r} but no input is named {BASE_INPUT!r} "
                  f"(inputs: {[i.name for i in inputs]})")
    inp = next(i for i in inputs if i.name != BASE_INPUT)
    out = outputs[0]
    for role, arg in (("input", inp), ("input", named[BASE_INPUT]), ("output", out)):
        if arg.type != "tensor(float)":
            raise bad(f"{role} {arg.name!r} is {arg.type}; expected tensor(float)")
    shape = _dims(inp.shape)
    if (len(shape) != 4 or shape[0] is not None or shape[1] != 1 or shape[2] is None
            or shape[2] != shape[3] or shape[2] < 2):
        raise bad(f"input {inp.name!r} has shape {list(inp.shape)}; an enlargement model "
                  "takes (N, 1, P, P), N dynamic, P >= 2")
    p = int(shape[2])
    want = [None, 1, scale * p, scale * p]
    for role, arg in (("input", named[BASE_INPUT]), ("output", out)):
        got = _dims(arg.shape)
        if len(got) != 4 or got[0] is not None or got[1:] != want[1:]:
            raise bad(f"{role} {arg.name!r} has shape {list(arg.shape)}; with metadata "
                      f"scale={scale} and {p}x{p} patches expected ['N', 1, {scale * p}, "
                      f"{scale * p}]")
    meta_patch = metadata.get("patch_size")
    if meta_patch is not None and meta_patch.strip() != str(p):
        raise bad(f"metadata patch_size={meta_patch!r} but the input takes {p}x{p} patches")
    meta_layout = metadata.get("layout")
    if meta_layout is not None and meta_layout.strip().upper() != "NCHW":
        raise bad(f"metadata layout={meta_layout!r}; an enlargement model is NCHW")
    prep = metadata.get("preprocess", "none").strip() or "none"
    if prep != "none":
        raise bad(f"metadata preprocess={prep!r}; an enlargement model reads the page as "
                  "scanned (preprocess none)")
    return ModelSpec(patch=p, layout="NCHW", input_name=inp.name, scale=scale, base=base)


__all__ = [
    "BASES", "BASE_INPUT", "CHECKSUM_SUFFIX", "CONTEXTS", "CONTEXT_INPUT",
    "DEFAULT_MODEL_NAME", "MAX_MODEL_BYTES",
    "ModelError", "ModelNotFoundError", "ModelSpec", "PREPROCESSING", "check_interface",
    "checksum_path", "default_model_path", "expected_checksum",
    "DEFAULT_MODEL", "SHIPPED_MODELS", "SHIPPED_CHECKSUMS", "is_shipped_model", "resolve_model",
    "shipped_model_path", "shipped_name",
    "SEAL_KEY", "SHIPPED_SHA256", "check_seal", "read_model_bytes", "read_model_version",
    "seal_model", "sha256_hex", "write_checksum",
]
