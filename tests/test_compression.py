"""Deep Compression's file format and the compressed AlexNets shipped in checkpoints/."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hw3core import ALEXNET_VARIANTS, AlexNet, AlexNetLargeKernel
from hw3core.checkpoints import CheckpointError, load_local
from hw3core.compression import (
    COMPRESSED_FILE,
    CompressedFileError,
    decode_gaps,
    encode_gaps,
    kmeans_codebook,
    load_compressed,
    pack_bits,
    save_compressed,
    unpack_bits,
)

REPO = Path(__file__).resolve().parent.parent
HF_PLAIN_GIT_LIMIT = 10 * 1024 * 1024  # a Space or model repo pushed with plain git refuses files this large


@pytest.mark.parametrize("bits", range(1, 9))
def test_codes_pack_into_bits_and_back(bits):
    codes = torch.randint(0, 2**bits, (1001,))
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and len(packed) == -(-1001 * bits // 8)
    assert torch.equal(unpack_bits(packed, bits, 1001), codes)


def test_gaps_round_trip_across_the_one_byte_limit():
    positions = torch.tensor([0, 1, 255, 256, 511, 766, 767, 1277, 5000])  # gaps of 1, 254, 255, 256, 510, 511...
    encoded = encode_gaps(positions)
    assert encoded.dtype == torch.uint8
    assert torch.equal(decode_gaps(encoded), positions)
    assert torch.equal(decode_gaps(encode_gaps(torch.tensor([], dtype=torch.long))), torch.tensor([], dtype=torch.long))


def test_kmeans_codebook_assigns_each_value_its_nearest_centroid():
    torch.manual_seed(0)
    values = torch.randn(5000)
    codebook, codes = kmeans_codebook(values, bits=3)
    assert len(codebook) == 8
    nearest = (values[:, None] - codebook[None]).abs().argmin(1)
    assert torch.equal(codebook[codes], codebook[nearest])
    # Better than the evenly spaced levels it starts from (Lloyd's iterations only lower the error).
    uniform = torch.linspace(values.min(), values.max(), 8)
    uniform_error = ((values[:, None] - uniform[None]).abs().min(1).values ** 2).mean()
    assert ((codebook[codes] - values) ** 2).mean() < 0.8 * uniform_error


def test_a_compressed_file_loads_to_exactly_its_quantized_weights_with_zeros_where_pruned(tmp_path):
    torch.manual_seed(0)
    state = {"sparse.weight": torch.randn(64, 300), "half.weight": torch.randn(32, 16, 3, 3),
             "dense.weight": torch.randn(10, 10), "dense.bias": torch.randn(10)}
    masks = {"sparse.weight": torch.rand(64, 300) < 0.05, "half.weight": torch.rand(32, 16, 3, 3) < 0.5}
    bits = {"sparse.weight": 4, "half.weight": 8, "dense.weight": 5}
    layout = save_compressed(tmp_path / COMPRESSED_FILE, state, masks, bits)
    assert layout["sparse.weight"]["positions"] == "gaps" and layout["half.weight"]["positions"] == "mask"
    assert layout["dense.weight"]["positions"] == "dense"

    decoded = load_compressed(tmp_path / COMPRESSED_FILE)
    stored = load_file(tmp_path / COMPRESSED_FILE)
    assert set(decoded) == set(state) and torch.equal(decoded["dense.bias"], state["dense.bias"])
    for name, mask in [*masks.items(), ("dense.weight", torch.ones(10, 10, dtype=torch.bool))]:
        codebook = stored[f"{name}.codebook"]
        assert len(codebook) == 2 ** bits[name]
        assert torch.equal(decoded[name] == 0, ~mask)  # zeros exactly where pruned (no kept weight is 0 here)
        nearest = codebook[(state[name][mask][:, None] - codebook[None]).abs().argmin(1)]
        assert torch.equal(decoded[name][mask], nearest)  # each kept weight is its codebook value


def small_alexnet_file(tmp_path, cls=AlexNet) -> Path:
    torch.manual_seed(0)
    model = cls()
    state = model.state_dict()
    bits = {name: 2 for name in state if name.endswith("weight")}
    masks = {name: torch.rand_like(state[name]) < 0.01 for name in bits}
    folder = tmp_path / "alexnet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"num_classes": 4, "dropout": 0.5}))
    save_compressed(folder / COMPRESSED_FILE, state, masks, bits)
    return folder


def dense_decode(cls, folder: Path) -> torch.nn.Module:
    model = cls()
    model.load_state_dict(load_compressed(folder / COMPRESSED_FILE), strict=True)
    return model.eval()


def test_loading_serves_the_pruned_linear_layers_sparse_and_answers_as_the_dense_decode(tmp_path):
    folder = small_alexnet_file(tmp_path)
    model = load_local(AlexNet, folder)
    dense = dense_decode(AlexNet, folder)
    assert str(model).replace("SparseLinear", "Linear") == str(AlexNet())
    assert sum(p.numel() for p in model.parameters()) == 58_297_732  # the architecture's, as the tables count
    decoded = load_compressed(folder / COMPRESSED_FILE)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor.to_dense() if tensor.layout == torch.sparse_csr else tensor, decoded[name]), name
    assert [name for name, p in model.named_parameters() if p.layout == torch.sparse_csr] == [
        "linear16.weight", "linear19.weight", "linear21.weight"]  # 1% kept: even the last layer is sparse
    images = torch.randn(3, 3, 227, 227)
    with torch.no_grad():
        torch.testing.assert_close(model(images).softmax(-1), dense(images).softmax(-1), rtol=0, atol=1e-6)
    assert not model.training


def test_loading_never_builds_a_dense_linear_weight(tmp_path, monkeypatch):
    """Neither the constructor's initialised weights nor a dense decode of a pruned layer: the largest
    dense tensor made while loading is a convolution's."""
    folder = small_alexnet_file(tmp_path)
    made = []
    zeros = torch.zeros
    monkeypatch.setattr(torch, "zeros", lambda *size, **kw: made.append(size) or zeros(*size, **kw))
    model = load_local(AlexNet, folder)
    assert model.linear16.weight.layout == torch.sparse_csr
    assert all(torch.Size(size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size).numel()
               < 4096 * 4096 for size in made), made
    assert not any(p.is_meta for p in model.parameters())


def test_a_truncated_compressed_file_is_refused_naming_it(tmp_path):
    folder = small_alexnet_file(tmp_path)
    data = (folder / COMPRESSED_FILE).read_bytes()
    (folder / COMPRESSED_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"alexnet/{COMPRESSED_FILE}"):
        load_local(AlexNet, folder)


def test_a_compressed_file_of_another_variant_is_refused_naming_it(tmp_path):
    folder = small_alexnet_file(tmp_path, AlexNetLargeKernel)
    with pytest.raises(CheckpointError, match=f"alexnet/{COMPRESSED_FILE}"):
        load_local(AlexNet, folder)


def test_a_plain_safetensors_file_under_the_compressed_name_is_refused(tmp_path):
    save_file({"w": torch.zeros(2)}, tmp_path / COMPRESSED_FILE)
    with pytest.raises(CompressedFileError, match="not a compressed checkpoint"):
        load_compressed(tmp_path / COMPRESSED_FILE)


def test_damaged_positions_are_refused(tmp_path):
    folder = small_alexnet_file(tmp_path)
    tensors = load_file(folder / COMPRESSED_FILE)
    from safetensors import safe_open

    with safe_open(str(folder / COMPRESSED_FILE), "pt") as file:
        metadata = file.metadata()
    tensors["linear16.weight.gaps"] = tensors["linear16.weight.gaps"][:-10]
    save_file(tensors, folder / COMPRESSED_FILE, metadata=metadata)
    with pytest.raises(CheckpointError, match="positions do not fit"):
        load_local(AlexNet, folder)


# ----- what the repository ships -----


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in listed.decode().split("\0") if name]


def test_every_tracked_file_is_under_the_plain_git_limit_of_the_hub():
    sizes = {path.relative_to(REPO): path.stat().st_size for path in tracked_files() if path.is_file()}
    assert sizes and all(size < HF_PLAIN_GIT_LIMIT for size in sizes.values()), \
        {str(path): size for path, size in sizes.items() if size >= HF_PLAIN_GIT_LIMIT}


@pytest.mark.parametrize("name", list(ALEXNET_VARIANTS))
def test_each_alexnet_ships_compressed_with_its_records(name):
    tracked = {path.relative_to(REPO).as_posix() for path in tracked_files()}
    folder = f"checkpoints/{name}"
    for file in ("config.json", COMPRESSED_FILE, "compression.json", "training.json", "metrics.jsonl"):
        assert f"{folder}/{file}" in tracked
    assert f"{folder}/model.safetensors" not in tracked
    record = json.loads((REPO / folder / "compression.json").read_text())
    validation = record["validation"]
    assert validation["compressed"]["accuracy"] >= validation["dense"]["accuracy"] - 0.01
    assert record["compressed_bytes"] == (REPO / folder / COMPRESSED_FILE).stat().st_size


def test_a_fresh_clone_classifies_with_all_three_alexnets(tmp_path):
    """Only what git holds (no dense weights, no data set, no Hub): the app's domain tab answers."""
    from PIL import Image

    from demos.domain import classify
    from demos.model_store import ModelStore

    for path in tracked_files():
        relative = path.relative_to(REPO)
        if relative.parts[0] == "checkpoints" and relative.parts[1].startswith("alexnet"):
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, tmp_path / relative)
    image = Image.new("RGB", (300, 200), "white")
    predictions = classify(image, ModelStore(tmp_path / "checkpoints"))
    assert len(predictions) == 3
    for prediction in predictions:
        assert prediction.problem is None, prediction.problem
        assert sum(prediction.probabilities.values()) == pytest.approx(1, abs=1e-5)


def test_the_hub_path_loads_a_compressed_repo(tmp_path, monkeypatch):
    """A Hub repo that holds only config.json and compressed.safetensors loads like a dense one."""
    from demos import model_store as models_module

    repo = small_alexnet_file(tmp_path)  # the snapshot a download would leave
    asked = []

    def snapshot_download(repo_id, allow_patterns):
        asked.append((repo_id, allow_patterns))
        return str(repo)

    monkeypatch.setattr(models_module, "snapshot_download", snapshot_download)
    store = models_module.ModelStore(tmp_path / "empty-root", hub_org="someone")
    model = store.get("alexnet")
    assert asked[0][0] == "someone/hw3-alexnet" and COMPRESSED_FILE in asked[0][1]
    decoded = load_compressed(repo / COMPRESSED_FILE)
    assert torch.equal(model.state_dict()["linear16.weight"].to_dense(), decoded["linear16.weight"])


class _Parsed(Exception):
    """Stops training.compress once its flags are parsed, carrying them."""


@pytest.mark.parametrize("name, flags, conv_density", [
    ("alexnet", [], 0.5),
    ("alexnet-large-kernel", [], 0.8),  # its registry defaults: the command its record shows remakes its file
    ("alexnet-large-kernel", ["--conv-density", "0.6"], 0.6),  # a flag given still wins
])
def test_compression_takes_each_variants_own_defaults(tmp_path, monkeypatch, name, flags, conv_density):
    from training import compress

    (tmp_path / "training.json").write_text(json.dumps({"task": name}))

    def parsed(args, run):
        assert run.task == name
        raise _Parsed(args)

    monkeypatch.setattr(compress, "compress", parsed)
    with pytest.raises(_Parsed) as stopped:
        compress.main(["--checkpoint", str(tmp_path), *flags])
    assert stopped.value.args[0].conv_density == conv_density


def test_compressing_a_folder_that_is_not_an_alexnet_is_a_message(tmp_path, capsys):
    from training import compress

    (tmp_path / "training.json").write_text(json.dumps({"task": "sentiment-gru"}))
    with pytest.raises(SystemExit) as exited:
        compress.main(["--checkpoint", str(tmp_path)])
    assert "does not name an AlexNet variant" in str(exited.value.code)


def test_help_prints_the_variants_own_compression_defaults(capsys, monkeypatch):
    from training import compress

    monkeypatch.setenv("COLUMNS", "1000")  # each flag's help on one line
    with pytest.raises(SystemExit):
        compress.main(["--checkpoint", str(REPO / "checkpoints" / "alexnet-large-kernel"), "--help"])
    assert re.search(r"--conv-density CONV_DENSITY\s+share [^\n]*\(default: 0\.8\)", capsys.readouterr().out)


def test_compressing_a_folder_with_a_damaged_record_names_the_file(tmp_path):
    from training import compress

    (tmp_path / "training.json").write_text("{damaged")
    with pytest.raises(SystemExit) as exited:
        compress.main(["--checkpoint", str(tmp_path)])
    assert f"`{tmp_path / 'training.json'}` cannot be read" in str(exited.value.code)


def test_compressing_a_folder_without_a_training_record_is_a_message(tmp_path):
    from training import compress

    folder = tmp_path / "alexnet"  # named for a variant, so only the missing record can stop it
    folder.mkdir()
    with pytest.raises(SystemExit) as exited:
        compress.main(["--checkpoint", str(folder)])
    assert "records no validation split" in str(exited.value.code)
