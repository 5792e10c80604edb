"""Everyday-words captions (galaxy_explorer.train.everyday) and their use in the lite recipe."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.train.captions import CLASS_NAMES
from galaxy_explorer.train.everyday import GRAMMAR, everyday_caption, everyday_pairs
from galaxy_explorer.train.real_proxies import EVERYDAY_QUERIES


def test_every_class_has_a_grammar():
    assert set(GRAMMAR) == set(CLASS_NAMES)


@pytest.mark.parametrize("cls", sorted(GRAMMAR))
def test_captions_are_plain_words_and_never_an_evaluation_query(cls):
    rng = np.random.default_rng(5)
    caps = [everyday_caption(cls, rng) for _ in range(400)]
    queries = [q.lower() for q, _ in EVERYDAY_QUERIES]
    for c in caps:
        low = c.lower()
        assert not any(q in low for q in queries), c
        assert CLASS_NAMES[cls] not in low, c  # not the class's technical name
        assert c[0].isupper() and c.endswith(".") and "  " not in c and " ," not in c, c
        assert not low.startswith(("a a", "a e", "a i", "a o", "a u")), c  # article
        assert len(c.split()) <= 40
    assert len(set(caps)) > 20  # varied wording


def test_forbidden_texts_are_drawn_again():
    rng = np.random.default_rng(0)
    caps = [everyday_caption("compact", rng, forbid=("speck",)) for _ in range(200)]
    assert not any("speck" in c for c in caps)
    with pytest.raises(RuntimeError, match="avoids"):
        everyday_caption("compact", rng, forbid=("",))


def test_pairs_are_deterministic_and_respect_fraction_and_classes():
    labels = ["elliptical", "irregular", "spiral", "unknown-label"] * 500
    a = everyday_pairs(labels, 0.3, 11, classes=("elliptical", "spiral"))
    assert a == everyday_pairs(labels, 0.3, 11, classes=("elliptical", "spiral"))
    assert a != everyday_pairs(labels, 0.3, 12, classes=("elliptical", "spiral"))
    idx, caps = a
    assert {labels[i] for i in idx} == {"elliptical", "spiral"}
    assert 0.25 < len(idx) / 1000 < 0.35
    assert len(idx) == len(caps)


def test_with_everyday_pairs_extends_the_training_set():
    """The recipe's step: each chosen image appears again with its everyday caption row."""
    import torch

    from galaxy_explorer.train import recipe_lite as rl

    class Tok:  # caption_text_features is the only use of model / tokenizer
        pass

    labels = ["elliptical", "irregular"] * 20
    feats = torch.arange(40, dtype=torch.float16).view(40, 1).repeat(1, 4)
    text = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    ids = torch.tensor([0, 1, 2, 0] * 10)
    r = dict(rl.RECIPE, everyday_fraction=0.5, everyday_skip=["irregular"], everyday_span=3)
    seen: list[list[str]] = []

    def fake_text(model, tokenizer, captions, max_length):
        seen.append(list(captions))
        return torch.nn.functional.normalize(torch.ones(len(captions), 8), dim=-1), None

    mp = pytest.MonkeyPatch()
    mp.setattr(rl, "caption_text_features", fake_text)
    try:
        f2, t2, i2, l2, (span_texts, span_emb) = rl.with_everyday_pairs(
            None, Tok(), feats, text, ids, labels, r
        )
    finally:
        mp.undo()
    idx, caps = everyday_pairs(labels, 0.5, rl.TRAIN_SEED, classes=("elliptical",))
    n = len(idx)
    assert n > 0 and len(f2) == 40 + n and len(l2) == 40 + n and len(i2) == 40 + n
    assert torch.equal(f2[40:], feats[idx]) and l2[40:] == ["elliptical"] * n
    assert seen == [list(dict.fromkeys(caps))]
    assert len(t2) == 3 + len(seen[0]) and int(i2[40:].min()) >= 3
    assert span_texts == seen[0][:3] and len(span_emb) == len(span_texts)


@pytest.mark.parametrize("everyday", [0.0, 0.3])
def test_model_card_says_how_the_head_was_trained(tmp_path, everyday):
    import json

    from galaxy_explorer._resources import resource_path
    from galaxy_explorer.train.recipe_lite import write_model_card

    src = resource_path("model") / "metrics.json"
    if not src.exists():
        pytest.skip("bundled model not built")
    m = json.loads(src.read_text())
    m["recipe"].update(everyday_fraction=everyday, class_loss=everyday and 0.5)
    write_model_card(tmp_path, m)
    card = (tmp_path / "README.md").read_text()
    assert ("Everyday-words captions" in card) == bool(everyday)
    assert ("Class loss (weight 0.5)" in card) == bool(everyday)
    assert "{" + "extra_training}" not in card
