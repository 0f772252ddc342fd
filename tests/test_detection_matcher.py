"""Matcher and BalancedPositiveNegativeSampler against torchvision, with ties and hand-built cases."""
import pytest
import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as TVSampler
from torchvision.models.detection._utils import Matcher as TVMatcher

from cvkit.detection import BalancedPositiveNegativeSampler, Matcher

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _quality(m: int, n: int, seed: int, levels: int | None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(m, n, generator=g)
    if levels:                                   # coarse values: many ties within rows and columns
        q = torch.floor(q * levels) / levels
    return q


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("thresholds", [(0.7, 0.3), (0.5, 0.5), (0.5, 0.1), (0.4, 0.0)])
@pytest.mark.parametrize("low_quality", [True, False])
@pytest.mark.parametrize("shape, levels", [((1, 1), None), ((1, 50), None), ((5, 200), None), ((7, 300), 10),
                                           ((3, 40), 4), ((12, 12), 3), ((20, 5), None)])
def test_matcher_equal_torchvision(device, thresholds, low_quality, shape, levels):
    for seed in range(3):
        q = _quality(*shape, seed, levels).to(device)
        expected = TVMatcher(*thresholds, allow_low_quality_matches=low_quality)(q.clone())
        got = Matcher(*thresholds, allow_low_quality_matches=low_quality)(q.clone())
        assert got.dtype == torch.int64
        assert torch.equal(got, expected)


def test_matcher_low_quality_rule_by_hand():
    # ground truth 0 reaches at most 0.4, with two predictions tied; prediction 2 overlaps gt 1 more (0.5)
    q = torch.tensor([[0.40, 0.10, 0.40, 0.00],
                      [0.00, 0.80, 0.50, 0.20]])
    plain = Matcher(0.7, 0.3, allow_low_quality_matches=False)(q)
    assert plain.tolist() == [Matcher.BETWEEN_THRESHOLDS, 1, Matcher.BETWEEN_THRESHOLDS, Matcher.BELOW_LOW_THRESHOLD]
    low = Matcher(0.7, 0.3, allow_low_quality_matches=True)(q)
    # both tied predictions of gt 0 are promoted, each to its own best ground truth: 0 and 1
    assert low.tolist() == [0, 1, 1, Matcher.BELOW_LOW_THRESHOLD]


def test_matcher_zero_overlap_ground_truth_promotes_every_tie():
    # a ground-truth box that overlaps nothing: every prediction ties at IoU 0 and is promoted (torchvision's quirk)
    q = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.1, 0.0]])
    assert Matcher(0.7, 0.3, True)(q).tolist() == [1, 1, 0]
    assert TVMatcher(0.7, 0.3, True)(q.clone()).tolist() == [1, 1, 0]


def test_matcher_bad_input():
    with pytest.raises(ValueError, match="no ground-truth"):
        Matcher(0.7, 0.3)(torch.zeros(0, 5))
    with pytest.raises(ValueError, match="no predictions"):
        Matcher(0.7, 0.3)(torch.zeros(2, 0))
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match=r"\[M ground truth, N predictions\]"):
        Matcher(0.7, 0.3)(torch.zeros(5))


def _labels(num_pos: int, num_neg: int, num_ignored: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat((torch.randint(1, 5, (num_pos,), generator=g), torch.zeros(num_neg, dtype=torch.int64),
                        -torch.ones(num_ignored, dtype=torch.int64)))
    return labels[torch.randperm(len(labels), generator=g)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch, fraction", [(256, 0.5), (64, 0.25), (512, 0.25), (10, 0.0), (10, 1.0), (7, 0.3)])
@pytest.mark.parametrize("counts", [(1000, 5000, 300), (3, 5000, 10), (400, 2, 0), (0, 50, 5), (0, 0, 20), (0, 0, 0)])
def test_sampler_counts_equal_torchvision(device, batch, fraction, counts):
    labels = [_labels(*counts, seed=s).to(device) for s in range(2)]
    pos, neg = BalancedPositiveNegativeSampler(batch, fraction)(labels)
    tv_pos, tv_neg = TVSampler(batch, fraction)(labels)
    for lab, p, n, tp, tn in zip(labels, pos, neg, tv_pos, tv_neg):
        assert p.dtype == torch.uint8 and n.dtype == torch.uint8 and p.shape == lab.shape
        assert int(p.sum()) == int(tp.sum()) and int(n.sum()) == int(tn.sum())
        # the counts of the rule, from the label counts
        expected_pos = min(counts[0], int(batch * fraction))
        assert int(p.sum()) == expected_pos
        assert int(n.sum()) == min(counts[1], batch - expected_pos)
        # sampled elements are what they claim to be, and nothing is both
        assert bool((lab[p.bool()] >= 1).all()) and bool((lab[n.bool()] == 0).all())
        assert not bool((p.bool() & n.bool()).any())


def test_sampler_fractions_of_the_papers():
    labels = [_labels(1000, 5000, 100, seed=0)]
    pos, neg = BalancedPositiveNegativeSampler(256, 0.5)(labels)             # RPN: 256 anchors, half positive
    assert (int(pos[0].sum()), int(neg[0].sum())) == (128, 128)
    pos, neg = BalancedPositiveNegativeSampler(64, 0.25)(labels)             # Fast R-CNN: 64 RoIs, 25 % foreground
    assert (int(pos[0].sum()), int(neg[0].sum())) == (16, 48)
    pos, neg = BalancedPositiveNegativeSampler(256, 0.5)([_labels(20, 5000, 0, seed=1)])   # few positives: pad
    assert (int(pos[0].sum()), int(neg[0].sum())) == (20, 236)


def test_sampler_draws_are_random_and_seedable():
    labels = [_labels(500, 500, 0, seed=3)]
    a = BalancedPositiveNegativeSampler(64, 0.25, torch.Generator().manual_seed(1))(labels)
    b = BalancedPositiveNegativeSampler(64, 0.25, torch.Generator().manual_seed(1))(labels)
    c = BalancedPositiveNegativeSampler(64, 0.25, torch.Generator().manual_seed(2))(labels)
    assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[1][0], b[1][0])
    assert not torch.equal(a[0][0], c[0][0])
    # every positive is drawn about equally often
    hits = torch.zeros(1000)
    sampler = BalancedPositiveNegativeSampler(100, 0.5, torch.Generator().manual_seed(0))
    for _ in range(200):
        hits += sampler(labels)[0][0].float()
    positives = labels[0] >= 1
    assert hits[positives].mean() == pytest.approx(200 * 50 / 500)
    assert hits[positives].std() < 0.5 * hits[positives].mean()


def test_sampler_bad_input():
    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(10, 1.5)
    with pytest.raises(TypeError, match="matched_idxs must be a list"):
        BalancedPositiveNegativeSampler(10, 0.5)(torch.zeros(3))
