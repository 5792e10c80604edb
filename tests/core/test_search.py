from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.core.search import (
    FewShotClassifier,
    combined_query,
    query_vector,
    rank_by_examples,
    rank_by_text,
    top_k,
    zero_shot,
)


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture
def emb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return _unit(rng.normal(size=(200, 16)))


def test_rank_by_text_is_cosine(emb):
    q = np.random.default_rng(1).normal(size=16).astype(np.float32) * 3.0  # not unit length
    scores = rank_by_text(q, emb)
    assert scores.shape == (200,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, emb @ _unit(q), rtol=1e-5, atol=1e-6)
    assert scores.max() <= 1.0 + 1e-5


def test_rank_by_text_several_vectors_averages(emb):
    t = _unit(np.random.default_rng(2).normal(size=(3, 16)))
    expected = emb @ _unit(t.mean(axis=0))
    np.testing.assert_allclose(rank_by_text(t, emb), expected, rtol=1e-5, atol=1e-6)


def test_float16_upcast(emb):
    q = emb[5]
    s16 = rank_by_text(q, emb.astype(np.float16))
    assert s16.dtype == np.float32
    np.testing.assert_allclose(s16, rank_by_text(q, emb), atol=2e-3)
    assert top_k(s16, 1)[0] == 5


def test_float16_blocks_equal_float32_of_the_same_values():
    """float16 storage is computed in float32 blocks: exactly the float32 product of the
    upcast values, across block boundaries (N not a multiple of the block) and for (D, L)."""
    from galaxy_explorer.core.search import _BLOCK_ROWS, _dot

    rng = np.random.default_rng(7)
    e16 = _unit(rng.normal(size=(3 * _BLOCK_ROWS + 17, 24))).astype(np.float16)
    e32 = e16.astype(np.float32)
    q = rng.normal(size=24).astype(np.float32)
    lab = rng.normal(size=(24, 5)).astype(np.float32)
    np.testing.assert_allclose(_dot(e16, q), e32 @ q, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_dot(e16, lab), e32 @ lab, rtol=1e-6, atol=1e-6)
    assert _dot(e16[:0], q).shape == (0,)
    assert _dot(e16, q).dtype == np.float32


def test_rank_by_examples_finds_itself_and_negatives_push_down(emb):
    scores = rank_by_examples(emb, emb[[3]])
    assert top_k(scores, 1)[0] == 3
    # a near-duplicate of 3 that also resembles the negative drops below one that doesn't
    base = emb[3]
    neg = emb[10]
    a = _unit(base + 0.3 * neg)  # looks like the negative
    b = _unit(base + 0.3 * emb[11])
    e = np.vstack([emb, a, b])
    s_plain = rank_by_examples(e, base)
    s_neg = rank_by_examples(e, base, negative=neg, neg_weight=1.0)
    assert s_neg[200] - s_neg[201] < s_plain[200] - s_plain[201]
    assert s_neg[201] > s_neg[200]


def test_rank_by_examples_needs_positive(emb):
    with pytest.raises(ValueError):
        rank_by_examples(emb, np.empty((0, 16)))


def test_combined_query_matches_single_parts(emb):
    t = emb[7] + 0.1
    np.testing.assert_allclose(combined_query(emb, text_vecs=t), rank_by_text(t, emb), rtol=1e-6)
    np.testing.assert_allclose(
        combined_query(emb, positive=emb[[1, 2]], negative=emb[[4]]),
        rank_by_examples(emb, emb[[1, 2]], emb[[4]]),
        rtol=1e-6,
    )
    both = combined_query(emb, text_vecs=emb[1], positive=emb[2], text_weight=2.0)
    np.testing.assert_allclose(both, emb @ _unit(2 * emb[1] + emb[2]), rtol=1e-5, atol=1e-6)


def test_combined_query_errors(emb):
    with pytest.raises(ValueError, match="empty query"):
        combined_query(emb)
    with pytest.raises(ValueError, match="dimension"):
        combined_query(emb, text_vecs=np.ones(8))
    with pytest.raises(ValueError):
        combined_query(emb[0], text_vecs=emb[0])


def test_query_vector_negative_only():
    q = query_vector(3, negative=np.array([1.0, 0, 0]), neg_weight=0.5)
    np.testing.assert_allclose(q, [-0.5, 0, 0])


def test_top_k_order_and_bounds():
    s = np.array([0.1, 0.9, 0.5, 0.9, -1.0, 0.7], dtype=np.float32)
    assert top_k(s, 3).tolist() == [1, 3, 5]
    assert top_k(s, 100).tolist() == [1, 3, 5, 2, 0, 4]
    assert top_k(s, 0).size == 0
    assert top_k(s, -2).size == 0
    assert top_k(np.empty(0), 5).size == 0
    assert top_k(s, 1).dtype == np.int64


def test_top_k_matches_argsort_and_nan_last():
    s = np.random.default_rng(3).normal(size=10_000).astype(np.float32)
    np.testing.assert_array_equal(top_k(s, 50), np.argsort(-s, kind="stable")[:50])
    s[[0, 1]] = np.nan
    assert set(top_k(s, 9998).tolist()).isdisjoint({0, 1})
    assert top_k(s, 10_000)[-2:].tolist() == [0, 1]


def test_zero_shot_softmax(emb):
    labels = emb[[0, 1, 2]]
    p = zero_shot(emb, labels, logit_scale=100.0)
    assert p.shape == (200, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert p[0].argmax() == 0 and p[0, 0] > 0.99
    logits = 100.0 * (emb @ labels.T)
    ref = np.exp(logits - logits.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, ref, rtol=1e-4, atol=1e-6)
    # a small scale gives flatter probabilities
    assert zero_shot(emb[:1], labels, 1.0)[0, 0] < p[0, 0]


def test_zero_shot_large_scale_is_stable(emb):
    p = zero_shot(emb, emb[:4], logit_scale=1e4)
    assert np.isfinite(p).all()


def _clusters(per_class: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(3, 16)))
    names = ["spiral", "elliptical", "merger, tidal"]
    x, y = [], []
    for c, name in enumerate(names):
        x.append(_unit(centres[c] + 0.15 * rng.normal(size=(per_class, 16))))
        y += [name] * per_class
    return np.vstack(x), y, centres, names


def test_few_shot_logistic():
    x, y, centres, names = _clusters(4)
    clf = FewShotClassifier().fit(x, y)
    assert clf.method == "logistic"
    classes, probs = clf.predict_proba(centres)
    assert classes == sorted(names)
    assert probs.shape == (3, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    predicted = [classes[i] for i in probs.argmax(axis=1)]
    assert predicted == names
    labels, conf = clf.predict(centres)
    assert labels == names and (conf > 0.5).all()


def test_few_shot_prototype_fallback():
    x, y, centres, names = _clusters(1)
    clf = FewShotClassifier().fit(x, y)
    assert clf.method == "prototype"
    classes, probs = clf.predict_proba(centres)
    assert [classes[i] for i in probs.argmax(axis=1)] == names
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_few_shot_single_class_and_errors():
    x, _, _, _ = _clusters(2)
    clf = FewShotClassifier().fit(x[:2], ["a", "a"])
    classes, probs = clf.predict_proba(x)
    assert classes == ["a"] and probs.shape == (6, 1) and (probs == 1).all()
    with pytest.raises(RuntimeError):
        FewShotClassifier().predict_proba(x)
    with pytest.raises(ValueError):
        FewShotClassifier().fit(x, ["a"])
    with pytest.raises(ValueError):
        FewShotClassifier().fit(x[:0], [])


def test_few_shot_float16_input():
    x, y, centres, names = _clusters(3)
    clf = FewShotClassifier().fit(x.astype(np.float16), y)
    classes, probs = clf.predict_proba(centres.astype(np.float16))
    assert [classes[i] for i in probs.argmax(axis=1)] == names
