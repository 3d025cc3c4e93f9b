"""training.data: reading the three data sets from what a user downloads, and their splits."""

import itertools
import tarfile
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from tiny_data import (
    PACS_CATEGORIES,
    PACS_DOMAINS,
    add_corrupt_images,
    expected_reviews,
    make_imdb_csv,
    make_imdb_folder,
    make_imdb_tarball,
    make_pacs,
    tiny_reviews,
)
from training.data import (
    CharChunks,
    CharStreams,
    DataError,
    ImageFolderDataset,
    balanced_holdout,
    collate_chars,
    collate_images,
    find_pacs_root,
    pacs_samples,
    read_imdb,
    read_text,
    split_text,
    stratified_split,
)

pytest_plugins = ["tiny_data_fixtures"]  # tiny_pacs, tiny_imdb, tiny_text, real_data

# ----- PACS -----


def test_find_pacs_root_accepts_the_folder_or_its_parent(tiny_pacs):
    assert find_pacs_root(tiny_pacs) == tiny_pacs
    assert find_pacs_root(tiny_pacs.parent) == tiny_pacs
    assert find_pacs_root(str(tiny_pacs)) == tiny_pacs


def test_find_pacs_root_names_what_is_missing(tmp_path):
    for domain in PACS_DOMAINS[:3]:  # no sketch
        (tmp_path / domain).mkdir()
    with pytest.raises(DataError, match="sketch"):
        find_pacs_root(tmp_path)
    with pytest.raises(DataError):
        find_pacs_root(tmp_path / "does-not-exist")


def test_pacs_samples_are_relative_paths_labelled_by_sorted_domain(tmp_path):
    pacs = make_pacs(tmp_path)
    (pacs / "photo" / "dog" / "Thumbs.db").write_bytes(b"\0")  # not images: left out
    (pacs / "cartoon" / "horse" / "notes.txt").write_text("not an image")
    (pacs / "cartoon" / "horse" / "UPPER.JPEG").write_bytes((pacs / "cartoon" / "horse" / "pic_000.jpg").read_bytes())
    samples = pacs_samples(pacs)

    assert len(samples) == len(PACS_DOMAINS) * len(PACS_CATEGORIES) * 3 + 1
    assert samples == sorted(samples, key=lambda s: (s[1], s[0]))  # a stable order
    for path, label in samples:
        assert not path.startswith("/") and "\\" not in path
        assert (pacs / path).is_file()
        assert label == sorted(PACS_DOMAINS).index(path.split("/")[0])
    assert Counter(label for _, label in samples) == {0: 6, 1: 7, 2: 6, 3: 6}
    assert "cartoon/horse/UPPER.JPEG" in {path for path, _ in samples}
    assert pacs_samples(pacs.parent) == samples


def labels_of(sizes: dict[int, int]) -> list[int]:
    labels = [label for label, size in sizes.items() for _ in range(size)]
    return labels[::2] + labels[1::2]  # interleaved, so indices are not grouped by class


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_stratified_split_is_a_seeded_partition_holding_out_ten_percent_of_each_class(seed):
    sizes = {0: 50, 1: 30, 2: 21, 3: 7}
    labels = labels_of(sizes)
    train, val = stratified_split(labels, 0.1, seed)

    assert (train, val) == stratified_split(labels, 0.1, seed)
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(len(labels)))
    held = Counter(labels[i] for i in val)
    for label, size in sizes.items():
        assert held[label] == round(size * 0.1)


def test_stratified_split_depends_on_the_seed():
    labels = labels_of({0: 50, 1: 50})
    splits = {tuple(stratified_split(labels, 0.1, seed)[1]) for seed in range(5)}
    assert len(splits) > 1


def test_image_dataset_gives_normalised_227_images(tiny_pacs):
    samples = pacs_samples(tiny_pacs)
    image, label = ImageFolderDataset(tiny_pacs, samples)[0]
    assert image.shape == (3, 227, 227) and image.dtype == torch.float32
    assert label == samples[0][1]
    assert image.min() < 0 < image.max()  # normalised, not in [0, 1]


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    pacs = make_pacs(tmp_path, per_category=2)
    corrupt = add_corrupt_images(pacs)
    samples = pacs_samples(pacs)
    assert set(corrupt) <= {path for path, _ in samples}  # found as images by their names
    dataset = ImageFolderDataset(pacs, samples)
    for index, (path, _) in enumerate(samples):
        assert (dataset[index] is None) == (path in corrupt)

    batches = list(DataLoader(dataset, batch_size=5, collate_fn=collate_images))
    assert sum(batch["skipped"] for batch in batches) == 2
    assert sum(len(batch["labels"]) for batch in batches) == len(samples) - 2
    for batch in batches:
        assert batch["images"].shape == (len(batch["labels"]), 3, 227, 227)

    only_corrupt = collate_images([None, None])
    assert only_corrupt["skipped"] == 2
    assert only_corrupt["images"].shape == (0, 3, 227, 227) and only_corrupt["labels"].shape == (0,)


def test_a_truncated_jpeg_is_skipped_too(tmp_path):
    pacs = make_pacs(tmp_path, per_category=1)
    good = pacs / "art_painting" / "dog" / "pic_000.jpg"
    (pacs / "art_painting" / "dog" / "truncated.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    samples = [("art_painting/dog/truncated.jpg", 0), ("art_painting/dog/pic_000.jpg", 0)]
    batch = collate_images([ImageFolderDataset(pacs, samples)[i] for i in range(2)])
    assert batch["skipped"] == 1 and batch["images"].shape == (1, 3, 227, 227)


# ----- IMDB -----


@pytest.fixture(scope="module")
def reviews():
    return tiny_reviews()


def test_read_imdb_tarball_folder_and_csv_agree(tmp_path, reviews):
    expected = expected_reviews(reviews)
    tarball = make_imdb_tarball(tmp_path / "aclImdb_v1.tar.gz", reviews)
    folder = make_imdb_folder(tmp_path / "extracted", reviews)
    csv_file = make_imdb_csv(tmp_path / "IMDB Dataset.csv", reviews)

    from_tarball = read_imdb(tarball)
    assert from_tarball == expected  # unlabelled and bag-of-words files left out, in member order
    assert read_imdb(str(tarball)) == expected
    assert read_imdb(folder) == expected
    assert read_imdb(folder / "aclImdb") == expected
    assert sorted(read_imdb(csv_file)) == sorted(expected)  # a CSV keeps its own row order
    assert Counter(label for _, label in from_tarball) == {0: 12, 1: 12}
    assert any("\n" in text and "Café" in text for text, _ in from_tarball)


def test_read_imdb_from_a_tarball_extracted_with_tarfile(tmp_path, reviews):
    tarball = make_imdb_tarball(tmp_path / "aclImdb_v1.tar.gz", reviews)
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp_path / "out", filter="data")
    assert read_imdb(tmp_path / "out") == expected_reviews(reviews)


def write_csv(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_a_bad_row_names_its_line(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", 'review,sentiment\n"good, fine",positive\nbad,negative\nmeh,neutral\n')
    with pytest.raises(DataError, match=r"line 4\b") as error:
        read_imdb(path)
    assert "reviews.csv" in str(error.value) and "neutral" in str(error.value)


def test_csv_with_a_short_row_names_its_line(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", "review,sentiment\nfine,positive\njust a review\nok,negative\n")
    with pytest.raises(DataError, match=r"line 3\b"):
        read_imdb(path)


def test_csv_line_numbers_count_quoted_line_breaks(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", 'review,sentiment\n"two\nlines",positive\nx,maybe\n')
    with pytest.raises(DataError, match=r"line 4\b"):
        read_imdb(path)


@pytest.mark.parametrize("header", ["text,label", "review", "sentiment,score", ""])
def test_csv_without_the_columns_is_refused(tmp_path, header):
    path = write_csv(tmp_path / "reviews.csv", header + "\nsomething,positive\n" if header else "")
    with pytest.raises(DataError, match="review.*sentiment"):
        read_imdb(path)


def test_read_imdb_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(DataError):
        read_imdb(tmp_path / "missing.tar.gz")
    with pytest.raises(DataError):
        read_imdb(write_csv(tmp_path / "notes.txt", "hello"))
    broken = tmp_path / "aclImdb_v1.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="aclImdb_v1.tar.gz"):
        read_imdb(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no labelled reviews"):
        read_imdb(tmp_path / "empty")


@pytest.mark.parametrize("n_val", [10, 11, 2])
def test_balanced_holdout_holds_out_n_val_with_equal_classes(n_val):
    labels = [1] * 30 + [0] * 20
    train, val = balanced_holdout(labels, n_val, seed=3)
    assert len(val) == n_val
    held = Counter(labels[i] for i in val)
    assert abs(held[0] - held[1]) <= n_val % 2 and held[0] + held[1] == n_val
    assert not set(train) & set(val) and sorted(train + val) == list(range(len(labels)))
    assert (train, val) == balanced_holdout(labels, n_val, seed=3)
    assert len({tuple(balanced_holdout(labels, n_val, seed)[1]) for seed in range(5)}) > 1


def test_balanced_holdout_refuses_to_hold_out_everything():
    with pytest.raises(DataError):
        balanced_holdout([0, 1, 0, 1], 4, seed=0)


# ----- Text -----


@pytest.mark.parametrize("length, history", [(41, 10), (47, 10), (100, 7)])
def test_char_chunks_shift_targets_by_one_and_cover_every_position(length, history):
    ids = torch.arange(length)
    chunks = CharChunks(ids, history)
    assert len(chunks) == (length - 1) // history
    inputs, targets = [], []
    for index in range(len(chunks)):
        x, y = chunks[index]
        assert x.shape == y.shape == (history,)
        assert torch.equal(y, x + 1)  # the next character of each position
        inputs += x.tolist()
        targets += y.tolist()
    assert inputs == list(range(len(chunks) * history))  # non-overlapping, in order, no gaps
    assert targets == list(range(1, len(chunks) * history + 1))
    assert length - 1 - len(targets) < history  # at most a partial window is left over
    batch = collate_chars([chunks[0], chunks[len(chunks) - 1]])
    assert batch["inputs"].shape == batch["targets"].shape == (2, history)


def test_char_chunks_of_a_text_too_short_for_one_window():
    assert len(CharChunks(torch.arange(5), 10)) == 0


@pytest.mark.parametrize("length, history, streams", [(1000, 10, 4), (1003, 7, 3), (64, 5, 6)])
def test_char_streams_batches_continue_each_other_row_by_row(length, history, streams):
    ids = torch.arange(length)
    data = CharStreams(ids, history, streams)
    row_length = length // streams
    assert len(data) == streams * ((row_length - 1) // history)
    batches = [collate_chars([data[i] for i in range(k, k + streams)]) for k in range(0, len(data), streams)]
    for k, batch in enumerate(batches):
        assert batch["window"] == k
        assert torch.equal(batch["targets"], batch["inputs"] + 1)  # the next character of each position
    rows = torch.cat([batch["inputs"] for batch in batches], dim=1)  # each row's windows, end to end
    for row in range(streams):  # row r is one contiguous stretch of the text, starting where row r-1's ends
        start = row * row_length
        assert torch.equal(rows[row], ids[start : start + rows.shape[1]])


def test_char_streams_under_two_processes_give_each_rank_whole_rows():
    """DistributedSampler(shuffle=False) deals example i to rank i % 2: with streams = batch x ranks,
    each rank's batch k is window k of its own rows, the same rows every batch."""
    batch_size, ranks = 3, 2
    data = CharStreams(torch.arange(2000), 10, batch_size * ranks)
    for rank in range(ranks):
        indices = list(torch.utils.data.DistributedSampler(data, ranks, rank, shuffle=False))
        first_chars = []
        for k in range(len(indices) // batch_size):
            batch = collate_chars([data[i] for i in indices[k * batch_size : (k + 1) * batch_size]])
            assert batch["window"] == k and all(data[i][2] == k for i in indices[k * batch_size : (k + 1) * batch_size])
            first_chars.append(batch["inputs"][:, 0])
        # consecutive windows of the same rows: each row advances by exactly one window per batch
        assert all(torch.equal(b - a, torch.full_like(a, 10)) for a, b in itertools.pairwise(first_chars))


def test_split_text_keeps_the_text_contiguous():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, val = split_text(text, 0.1)
    assert train + val == text and len(val) == 100


def test_read_text_refuses_non_utf8_and_missing_files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("ROMEO:\nBut, soft! — what light", encoding="utf-8")
    assert read_text(good) == "ROMEO:\nBut, soft! — what light"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Café".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        read_text(latin)
    with pytest.raises(DataError):
        read_text(tmp_path)
