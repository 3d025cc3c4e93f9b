"""Per-domain figures and balanced sampling: what makes an AlexNet's record show every domain."""

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from training.distributed import WeightedShardSampler
from training.loop import class_tally, kept_epoch, per_class_scores
from training.train_alexnet import balanced_weights, draw_weights

CLASSES = ("a", "b", "c")


def test_class_tally_is_the_confusion_matrix_and_each_class_loss_sum():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 4.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2, 2])
    tally = class_tally(logits, labels, 3)
    assert tally[:, :3].tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]  # row: true class, column: predicted
    losses = F.cross_entropy(logits, labels, reduction="none").double()
    expected = torch.stack([losses[labels == k].sum() for k in range(3)])
    torch.testing.assert_close(tally[:, 3], expected)


def test_per_class_scores_weigh_every_class_alike():
    # 8 examples of class a, all right; 2 of b, none right; none of c.
    tally = torch.zeros(3, 4, dtype=torch.float64)
    tally[0, 0], tally[1, 0], tally[0, 3], tally[1, 3] = 8, 2, 0.8, 4.0
    scores = per_class_scores(tally, CLASSES)
    assert scores["per_class"] == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert scores["balanced_accuracy"] == pytest.approx(1 / 3)  # plain accuracy would read 0.8
    assert scores["balanced_loss"] == pytest.approx((0.1 + 2.0 + 0.0) / 3)
    assert scores["confusion"] == [[8, 0, 0], [2, 0, 0], [0, 0, 0]]


def test_balanced_weights_draw_each_domain_equally_often():
    labels = [0] * 600 + [1] * 300 + [2] * 100
    sampler = WeightedShardSampler(balanced_weights(labels), seed=0)
    drawn = Counter(labels[i] for i in sampler)
    assert len(sampler) == sum(drawn.values()) == len(labels)
    for label in range(3):
        assert drawn[label] == pytest.approx(len(labels) / 3, rel=0.15)


def test_domain_weights_set_each_domains_share_of_the_draws():
    labels = [0] * 600 + [1] * 300 + [2] * 100
    drawn = Counter(labels[i] for i in WeightedShardSampler(draw_weights(labels, "balanced", [2, 1, 1]), seed=0))
    for label, share in enumerate([0.5, 0.25, 0.25]):  # balanced, then in proportion to the weights
        assert drawn[label] == pytest.approx(share * len(labels), rel=0.15)
    drawn = Counter(labels[i] for i in WeightedShardSampler(draw_weights(labels, "uniform", [1, 2, 3]), seed=0))
    for label, share in enumerate([0.4, 0.4, 0.2]):  # uniform: each image's chance scaled by its domain's weight
        assert drawn[label] == pytest.approx(share * len(labels), rel=0.15)
    assert draw_weights(labels, "uniform", None) is None  # every image once per epoch, shuffled


def test_the_weighted_sampler_is_seeded_by_epoch_and_shards_across_ranks():
    weights = [1.0] * 10 + [5.0] * 10
    first, again = WeightedShardSampler(weights, seed=3), WeightedShardSampler(weights, seed=3)
    assert list(first) == list(again)  # a resumed run draws what it would have
    again.set_epoch(1)
    assert list(first) != list(again)
    ranks = [WeightedShardSampler(weights, world_size=2, rank=rank, seed=3) for rank in (0, 1)]
    whole = list(WeightedShardSampler(weights, seed=3))
    assert list(ranks[0]) == whole[0::2] and list(ranks[1]) == whole[1::2]
    assert len(ranks[0]) == len(ranks[1]) == 10


def test_a_classifier_keeps_the_epoch_of_lowest_balanced_loss():
    history = [
        {"epoch": 1, "val_loss": 0.30, "val_balanced_loss": 0.50},  # lowest plain loss: the easy domain carries it
        {"epoch": 2, "val_loss": 0.32, "val_balanced_loss": 0.40},
    ]
    assert kept_epoch(history, "best") == 2
    assert kept_epoch([{k: v for k, v in row.items() if k != "val_balanced_loss"} for row in history], "best") == 1
