"""Model files are refused at load time, naming the path and the problem; the
shipped model's SHA-256 is checked. Every model here is a real file loaded by
real onnxruntime."""

from __future__ import annotations

import hashlib
import shutil

import cv2
import numpy as np
import pytest
from helpers import make_onnx_graph_model, node, scalar
from onnx import TensorProto

from ocr_denoise import Denoiser, ModelError, ModelNotFoundError
from ocr_denoise.model import (
    SEAL_KEY,
    SHIPPED_SHA256,
    check_seal,
    checksum_path,
    default_model_path,
    expected_checksum,
    read_model_bytes,
    seal_model,
    write_checksum,
)

NHWC = ["N", 28, 28, 1]


def refused(path, *match: str) -> ModelError:
    """Creating a Denoiser on ``path`` raises ModelError naming the file and each match."""
    with pytest.raises(ModelError) as info:
        Denoiser(path, device="cpu")
    msg = str(info.value)
    assert str(path) in msg, msg
    for m in match:
        assert m in msg, (m, msg)
    return info.value


# -- the shipped model and its checksum ----------------------------------------------------

def test_shipped_model_matches_its_checksum_file():
    """Fails when the model is re-exported without regenerating denoiser.onnx.sha256."""
    model = default_model_path()
    recorded = checksum_path(model).read_text().split()
    assert recorded[1] == model.name
    assert recorded[0] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_exported_link_finds_the_checksum_beside_the_real_file():
    from helpers import REPO

    assert checksum_path(REPO / "exported" / "denoiser.onnx") == checksum_path(
        default_model_path())


@pytest.fixture
def model_copy(tmp_path):
    """A copy of the shipped model with its own checksum file."""
    path = tmp_path / "copy.onnx"
    shutil.copyfile(default_model_path(), path)
    write_checksum(path)
    return path


def test_model_copy_with_matching_checksum_loads(model_copy):
    assert Denoiser(model_copy, device="cpu").patch_size > 1


def test_one_flipped_byte_is_caught_by_the_checksum(model_copy):
    data = bytearray(model_copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # a weight, most likely: onnxruntime would load it
    model_copy.write_bytes(bytes(data))
    refused(model_copy, "SHA-256", "does not match", "copy.onnx.sha256")


def test_the_package_records_the_shipped_models_checksum():
    """Fails when the model is re-exported without updating ``SHIPPED_SHA256``."""
    assert SHIPPED_SHA256 == expected_checksum(default_model_path())


def test_shipped_model_without_its_checksum_file_is_still_verified_and_said_once(
        tmp_path, monkeypatch, caplog):
    """An install that lost denoiser.onnx.sha256 verifies the shipped model against
    the package's own record of its SHA-256, and says so once per process, however
    often the model is read; a damaged shipped model is refused, not warned about."""
    from ocr_denoise import model

    shipped = tmp_path / "models" / "denoiser.onnx"
    shipped.parent.mkdir()
    shutil.copyfile(default_model_path(), shipped)
    monkeypatch.setattr(model, "shipped_model_path", lambda name: shipped)
    with caplog.at_level("WARNING", logger="ocr_denoise"):
        for _ in range(3):
            read_model_bytes(shipped)
        Denoiser(shipped, device="cpu")
    notes = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert notes == [f"{shipped}: no checksum file denoiser.onnx.sha256; verified against "
                     "the shipped model's SHA-256 recorded in the package"]
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    shipped.write_bytes(bytes(data))
    refused(shipped, "is not the shipped model's", SHIPPED_SHA256)


def test_one_flipped_byte_of_a_model_without_its_checksum_file_never_changes_a_page(
        tmp_path):
    """A copy of the shipped model with no .sha256 beside it, one byte flipped at 24
    seeded places (weights, graph, metadata): each is refused with a ModelError
    naming the file, or gives the very bytes of the undamaged copy (a flip in the
    seal's own key only unseals it). The checksum the model records of itself
    (``content_sha256``) travels inside the file."""
    path = tmp_path / "copy.onnx"
    shutil.copyfile(default_model_path(), path)
    original = path.read_bytes()
    rng = np.random.default_rng(35)
    page = np.clip(rng.normal(200, 40, (60, 90)), 0, 255).astype(np.uint8)
    page[20:24, 10:80] = 20  # a stroke of ink
    want = Denoiser(path, device="cpu", skip_white=None).denoise(page, guard=False)
    outcomes = []
    for at in rng.integers(0, len(original), 24):
        data = bytearray(original)
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            got = Denoiser(path, device="cpu", skip_white=None).denoise(page, guard=False)
        except ModelError as e:
            assert str(path) in str(e), e
            outcomes.append("refused")
            continue
        assert got.tobytes() == want.tobytes(), f"byte {at} flipped changes the page"
        outcomes.append("same")
    assert outcomes.count("refused") >= 20, outcomes


def test_a_sealed_model_is_verified_and_a_stale_seal_refused(tmp_path):
    """``seal_model`` records the model's own checksum; editing the model without
    resealing it is refused; a model with no seal loads as before."""
    import onnx
    from helpers import make_onnx_model

    path = make_onnx_model(tmp_path / "m.onnx")
    assert check_seal(path, path.read_bytes()) is False
    digest = seal_model(path)
    assert check_seal(path, path.read_bytes()) is True
    assert Denoiser(path, device="cpu").metadata[SEAL_KEY] == digest
    proto = onnx.load(str(path))
    proto.metadata_props.add(key="note", value="edited")
    onnx.save(proto, str(path))
    refused(path, "do not match the checksum it records", "seal_model")
    seal_model(path)
    assert Denoiser(path, device="cpu").metadata["note"] == "edited"


def test_truncated_model_is_caught_by_the_checksum(model_copy):
    model_copy.write_bytes(model_copy.read_bytes()[:1000])
    refused(model_copy, "SHA-256", "damaged or was replaced")


def test_rewriting_the_checksum_after_export_makes_the_model_load_again(model_copy,
                                                                         identity_model):
    shutil.copyfile(identity_model, model_copy)  # a re-export...
    refused(model_copy, "SHA-256")               # ...without its checksum is refused
    write_checksum(model_copy)                   # what train/export.py does last
    page = np.full((5, 5), 9, np.uint8)
    np.testing.assert_array_equal(Denoiser(model_copy, device="cpu").denoise(page), page)


@pytest.mark.parametrize("content", ["", "not a hash\n", "abc123  copy.onnx\n",
                                     "z" * 64 + "  copy.onnx\n"])
def test_malformed_checksum_file_is_refused_not_ignored(model_copy, content):
    checksum_path(model_copy).write_text(content)
    refused(model_copy, "malformed checksum file", "64-digit hex")


def test_checksum_file_is_sha256sum_compatible(model_copy):
    import subprocess

    r = subprocess.run(["sha256sum", "-c", checksum_path(model_copy).name],
                       cwd=model_copy.parent, capture_output=True, text=True)
    assert r.returncode == 0 and "copy.onnx: OK" in r.stdout, r.stdout + r.stderr


def test_custom_model_without_checksum_has_no_expected_hash(identity_model):
    assert expected_checksum(identity_model) is None
    assert read_model_bytes(identity_model) == identity_model.read_bytes()


# -- files that are not models ---------------------------------------------------------------

def test_missing_model_is_model_not_found_and_file_not_found(tmp_path):
    e = refused(tmp_path / "gone.onnx", "model file not found")
    assert isinstance(e, ModelNotFoundError) and isinstance(e, FileNotFoundError)


def test_directory_is_refused(tmp_path):
    (tmp_path / "dir.onnx").mkdir()
    refused(tmp_path / "dir.onnx", "is a directory")


def test_character_device_is_refused_without_reading_it():
    refused("/dev/zero", "not a regular file")  # reading it would never end


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    refused(tmp_path / "empty.onnx", "empty (0 bytes)")


def test_file_over_2_gib_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.onnx"
    with open(big, "wb") as f:
        f.truncate(3 * 2**30)  # sparse: costs no disk, and must not be read
    refused(big, "over the 2 GiB")


@pytest.mark.parametrize("name,make", [
    ("random.onnx", lambda: np.random.default_rng(0).bytes(4096)),
    ("image.onnx", lambda: cv2.imencode(".png", np.full((64, 64), 200, np.uint8))[1].tobytes()),
    ("text.onnx", lambda: b"this is not a model\n" * 50),
    ("zeros.onnx", lambda: bytes(1000)),
])
def test_non_onnx_bytes_are_refused_by_onnxruntime_with_the_path(tmp_path, name, make):
    (tmp_path / name).write_bytes(make())
    refused(tmp_path / name, "cannot load it as an ONNX model")


def test_truncated_model_without_checksum_is_refused(tmp_path):
    path = tmp_path / "half.onnx"
    path.write_bytes(default_model_path().read_bytes()[:50_000])
    refused(path, "cannot load it as an ONNX model")


def test_model_with_an_operator_onnxruntime_lacks_is_refused(tmp_path):
    from onnx import helper

    path = make_onnx_graph_model(
        tmp_path / "custom_op.onnx",
        [helper.make_node("Denoise", ["x"], ["y"], domain="com.example")], NHWC, NHWC,
        check=False)
    refused(path, "cannot load it as an ONNX model")


# -- models that load but do not fit -------------------------------------------------------

IDENTITY = [node("Identity", ["x"], ["y"])]


@pytest.mark.parametrize("in_shape,match", [
    (["N", 28, 28], "(3-D); expected 4-D"),
    (["N", 1, 28, 28, 1], "(5-D); expected 4-D"),
    (["N", 28, 28, 3], "expected one gray channel"),
    (["N", 3, 28, 28], "expected one gray channel"),
    (["N", 28, 32, 1], "non-square 28x32 patches"),
    (["N", 1, 32, 28], "non-square 32x28 patches"),
    (["N", "h", "w", 1], "expected a fixed patch height and width"),
    ([1, 28, 28, 1], "fixed batch size 1"),
    (["N", 1, 1, 1], "expected P >= 2"),
])
def test_input_shape_that_does_not_fit_is_refused(tmp_path, in_shape, match):
    path = make_onnx_graph_model(tmp_path / "shape.onnx", IDENTITY, in_shape, in_shape)
    refused(path, match)


def test_declared_output_shape_differing_from_input_is_refused(tmp_path):
    path = make_onnx_graph_model(
        tmp_path / "pool.onnx",
        [node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        ["N", 1, 28, 28], ["N", 1, 14, 14])
    refused(path, "output 'y' has shape", "expected the input's shape")


def test_undeclared_output_shape_differing_from_input_is_caught_by_the_probe(tmp_path):
    """The crop size goes through the data (max(x) * 0 + 14), so no shape
    inference can see that the output is 14 x 14; only running the model can."""
    from onnx import helper

    def ints(name, values):
        return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)

    path = make_onnx_graph_model(
        tmp_path / "crop.onnx",
        [node("ReduceMax", ["x"], ["m"], keepdims=0), node("Mul", ["m", "zero"], ["z"]),
         node("Add", ["z", "fourteen"], ["f"]), node("Cast", ["f"], ["k0"], to=TensorProto.INT64),
         node("Reshape", ["k0", "one"], ["k"]), node("Concat", ["k", "k"], ["ends"], axis=0),
         node("Slice", ["x", "starts", "ends", "axes"], ["y"])],
        ["N", 1, 28, 28], ["N", 1, "a", "b"],
        initializers=[scalar("zero", 0.0), scalar("fourteen", 14.0), ints("one", [1]),
                      ints("starts", [0, 0]), ints("axes", [2, 3])])
    refused(path, "returns shape (2, 1, 14, 14) for input (2, 1, 28, 28)")


def test_model_that_only_runs_with_batch_1_is_caught_by_the_probe(tmp_path):
    from onnx import helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 28, 28, 1])
    path = make_onnx_graph_model(tmp_path / "batch1.onnx",
                                 [node("Reshape", ["x", "shape"], ["y"])], NHWC, NHWC,
                                 initializers=[shape])
    refused(path, "fails on a probe batch of 2 patches")


def test_integer_input_is_refused(tmp_path):
    path = make_onnx_graph_model(tmp_path / "u8.onnx",
                                 [node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
                                 NHWC, NHWC, in_type=TensorProto.UINT8)
    refused(path, "input 'x' is tensor(uint8); expected tensor(float)")


def test_double_output_is_refused(tmp_path):
    path = make_onnx_graph_model(tmp_path / "f64.onnx",
                                 [node("Cast", ["x"], ["y"], to=TensorProto.DOUBLE)],
                                 NHWC, NHWC, out_type=TensorProto.DOUBLE)
    refused(path, "output 'y' is tensor(double)")


def test_two_inputs_are_refused(tmp_path):
    path = make_onnx_graph_model(tmp_path / "two.onnx", [node("Add", ["x", "x2"], ["y"])],
                                 NHWC, NHWC, extra_inputs=("x2",))
    refused(path, "2 inputs and 1 outputs")


@pytest.mark.parametrize("metadata,match", [
    ({"patch_size": "32"}, "metadata patch_size='32' but the input takes 28x28"),
    ({"patch_size": "twenty-eight"}, "metadata patch_size='twenty-eight'"),
    ({"layout": "NCHW"}, "metadata layout='NCHW' but the input shape"),
])
def test_metadata_that_contradicts_the_input_is_refused(tmp_path, metadata, match):
    path = make_onnx_graph_model(tmp_path / "meta.onnx", IDENTITY, NHWC, NHWC,
                                 metadata=metadata)
    refused(path, match)


@pytest.mark.parametrize("layout,shape", [("NHWC", NHWC), ("nchw", ["N", 1, 28, 28])])
def test_metadata_that_agrees_with_the_input_is_accepted(tmp_path, layout, shape):
    path = make_onnx_graph_model(tmp_path / "ok.onnx", IDENTITY, shape, shape,
                                 metadata={"patch_size": "28", "layout": layout})
    page = np.arange(35, dtype=np.uint8).reshape(5, 7)
    np.testing.assert_array_equal(Denoiser(path, device="cpu").denoise(page), page)


def test_model_returning_nan_for_a_black_patch_is_refused_at_load(tmp_path):
    path = make_onnx_graph_model(tmp_path / "div0.onnx", [node("Div", ["x", "zero"], ["y"])],
                                 NHWC, NHWC, initializers=[scalar("zero", 0.0)])
    refused(path, "NaN or infinite values")


CONTEXT = {"context": "quarter-v1"}


def test_context_model_is_fed_its_context_input_by_name(tmp_path, rng):
    # 'context' declared first: the patch input is found by name, not by position
    path = make_onnx_graph_model(tmp_path / "ctx.onnx",
                                 [node("Sub", ["x", "context"], ["y"])],
                                 NHWC, NHWC, extra_inputs=("context",), metadata=CONTEXT)
    x, c = rng.random((2, 3, 28, 28), dtype=np.float32)
    got = Denoiser(path, device="cpu").denoise_patches(x, c)
    np.testing.assert_allclose(got, x - c, atol=1e-6)


@pytest.mark.parametrize("extra,metadata,match", [
    ((), CONTEXT, "1 inputs and 1 outputs; expected exactly 2 inputs (metadata context="),
    (("x2",), CONTEXT, "no input is named 'context'"),
    (("context",), {}, "2 inputs and 1 outputs; expected exactly 1 input and"),
    (("context",), {"context": "whole-page-v9"}, "context='whole-page-v9' is not one"),
])
def test_context_input_and_metadata_must_agree(tmp_path, extra, metadata, match):
    nodes = [node("Add", ["x", extra[0]], ["y"])] if extra else IDENTITY
    path = make_onnx_graph_model(tmp_path / "ctx.onnx", nodes, NHWC, NHWC,
                                 extra_inputs=extra, metadata=metadata)
    refused(path, match)


def test_shipped_models_are_chosen_by_name_everywhere_a_path_is_taken(tmp_path):
    from ocr_denoise import Denoiser
    from ocr_denoise.model import DEFAULT_MODEL, SHIPPED_MODELS, resolve_model

    assert resolve_model(None) == resolve_model(DEFAULT_MODEL) == default_model_path()
    for name in SHIPPED_MODELS:
        den = Denoiser(name, device="cpu")
        assert den.model_path == resolve_model(name) and den.model_path.is_file()
    # a path is still a path; a name that is neither is refused naming it
    assert resolve_model(str(tmp_path / "m.onnx")) == tmp_path / "m.onnx"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        Denoiser("no-such-model", device="cpu")


def test_every_shipped_model_has_its_checksum_in_the_package():
    from ocr_denoise.model import SHIPPED_CHECKSUMS, SHIPPED_MODELS, sha256_hex, shipped_model_path

    for name, file in SHIPPED_MODELS.items():
        recorded = checksum_path(shipped_model_path(name)).read_text().split()[0]
        assert SHIPPED_CHECKSUMS[file] == recorded == sha256_hex(
            shipped_model_path(name).read_bytes())
