"""Uploads leave nothing behind: each file a client uploads is deleted once its handler has read it."""

from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import running_app
from demos.errors import InvalidInput
from demos.received import ReceivedUploads
from tests.student_models import StarterGRUCell, StarterSentimentClassification


@pytest.fixture()
def upload_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def on_disk(folder: Path, names: list[str]) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name in names]


def test_ten_distinct_uploads_leave_at_most_one_file_on_disk(checkpoints, upload_folder, tmp_path):
    models, images = [], []
    for index in range(10):
        torch.manual_seed(index)
        models.append(tmp_path / f"student-{index}.pt")
        torch.save(StarterSentimentClassification(30, 6, StarterGRUCell, 5).state_dict(), models[-1])
        images.append(tmp_path / f"image-{index}.png")
        Image.new("RGB", (40 + index, 30), (25 * index, 100, 200)).save(images[-1])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with running_app(checkpoints) as url:
        clients = [Client(url, verbose=False, analytics_enabled=False) for _ in range(3)]
        for index, (model, image) in enumerate(zip(models, images, strict=True)):
            client = clients[index % 3]
            report = client.predict(handle_file(model), "auto", api_name="/check_model")[0]
            assert report["model"] == "SentimentClassification"
            endpoint = ["/classify_domain", "/explain_domain", "/your_domain"][index % 3]
            if endpoint == "/your_domain":  # needs a runnable AlexNet checked: refused after the image was read
                with pytest.raises(AppError, match="checked but cannot be run"):
                    client.predict(handle_file(image), api_name=endpoint)
            else:
                client.predict(handle_file(image), api_name=endpoint)
        with pytest.raises(AppError, match="junk.pt is not a PyTorch checkpoint"):  # a refused file goes too
            clients[0].predict(handle_file(tmp_path / "junk.pt"), "auto", api_name="/check_model")
        assert on_disk(upload_folder, [path.name for path in [*models, *images, tmp_path / "junk.pt"]]) == []
        assert any(upload_folder.rglob("*.png"))  # what Gradio caches itself (the examples, the outputs) stays


class FakeBlocks:
    def __init__(self):
        self.upload_file_set = set()


class FakeImage:
    def __init__(self, cached: set[str]):
        self.temp_files = cached


def test_an_image_read_once_is_given_again_for_the_same_upload_and_a_model_file_is_asked_for_again(tmp_path):
    blocks = FakeBlocks()
    received = ReceivedUploads(blocks)
    (tmp_path / "hash").mkdir()
    image_path, model_path = str(tmp_path / "hash" / "a.png"), str(tmp_path / "hash" / "m.pt")
    Image.new("RGB", (5, 5), "red").save(image_path)
    Path(model_path).write_bytes(b"weights")
    blocks.upload_file_set |= {image_path, model_path}
    first = received.read_image(image_path, lambda: Image.open(image_path).convert("RGB"))
    assert not Path(image_path).exists() and image_path not in blocks.upload_file_set
    assert received.read_image(image_path, lambda: pytest.fail("read again")) is first  # the next button's request
    assert received.read_file(model_path, lambda: Path(model_path).read_bytes()) == b"weights"
    assert not (tmp_path / "hash").exists()
    with pytest.raises(InvalidInput, match="m.pt is no longer on the server: each upload is read once"):
        received.read_file(model_path, lambda: Path(model_path).read_bytes())


def test_only_what_a_client_uploaded_is_deleted_and_never_an_examples_copy(tmp_path):
    blocks = FakeBlocks()
    received = ReceivedUploads(blocks)
    example, elsewhere, uploaded = (tmp_path / name for name in ("example.png", "elsewhere.png", "uploaded.png"))
    for path in (example, elsewhere, uploaded):
        path.write_bytes(b"x")
    received.keep_cached(FakeImage({str(example)}))
    blocks.upload_file_set |= {str(example), str(uploaded)}  # the example's own file uploaded: the same path
    with pytest.raises(ValueError):
        received.read_file(str(example), lambda: (_ for _ in ()).throw(ValueError("refused")))
    received.read_file(str(elsewhere), lambda: None)
    assert example.exists() and elsewhere.exists() and uploaded.exists()
    received.read_file(str(uploaded), lambda: None)
    assert not uploaded.exists()
