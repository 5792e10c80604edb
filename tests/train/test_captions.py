"""Tests for caption generation (galaxy_explorer.train.captions)."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.train.captions import (
    CLASS_NAMES,
    MAX_WORDS,
    caption_for,
    caption_for_label,
    human_name,
    label_to_captions,
)
from galaxy_explorer.train.synth import CLASSES, dust_lane_visible, sample_params

#: every caption of a class contains one of these (lower-case)
CLASS_WORDS = {
    "elliptical": ("elliptical",),
    "lenticular": ("lenticular", "s0"),
    "spiral": ("spiral",),
    "barred_spiral": ("barred spiral", "sb spiral"),
    "edge_on": ("edge-on",),
    "irregular": ("irregular",),
    "merger": ("merg", "interacting"),
    "ring": ("ring",),
    "compact": ("compact", "point-like"),
    "artifact": ("artifact",),
}


def _captions(cls: str, n: int, seed: int = 0) -> list[str]:
    out = []
    for i in range(n):
        p = sample_params(np.random.default_rng([seed, i, 0]), cls)
        out.append(caption_for(p, np.random.default_rng([seed, i, 2])))
    return out


def test_class_names_cover_classes():
    assert set(CLASS_NAMES) == set(CLASSES)
    assert CLASS_NAMES["barred_spiral"] == "barred spiral galaxy"
    assert CLASS_NAMES["edge_on"] == "edge-on disk galaxy"
    assert CLASS_NAMES["merger"] == "merging galaxies"


@pytest.mark.parametrize("cls", CLASSES)
def test_captions_name_class_short_and_varied(cls):
    caps = _captions(cls, 60)
    for c in caps:
        low = c.lower()
        assert any(w in low for w in CLASS_WORDS[cls]), c
        assert len(c.split()) <= MAX_WORDS, c
        assert c[0].isupper() and c.endswith(".")
        assert "  " not in c and " ," not in c
    assert len(set(caps)) >= 30, f"only {len(set(caps))} distinct captions for {cls}"


def test_captions_reflect_parameters():
    # barred spirals talk about the bar; edge-on with dust mention the lane; spirals never a bar
    for c in _captions("barred_spiral", 20):
        assert "bar" in c.replace("barred", ""), c
    for i in range(20):
        p = sample_params(np.random.default_rng([1, i, 0]), "edge_on")
        c = caption_for(p, np.random.default_rng(i))
        if dust_lane_visible(p):
            assert "dust lane" in c, c
        elif p.dust_lane == 0:
            assert "dust lane" not in c or "no visible dust lane" in c or "no dust lane" in c, c
    for c in _captions("spiral", 30):
        assert " bar" not in c.replace("barred", ""), c
    for c in _captions("elliptical", 30):
        assert "arm" not in c and "bar " not in c


def test_caption_deterministic():
    p = sample_params(np.random.default_rng(3), "merger")
    assert caption_for(p, np.random.default_rng(5)) == caption_for(p, np.random.default_rng(5))


def test_label_to_captions():
    caps = label_to_captions("barred_spiral")
    assert caps[0] == "A barred spiral galaxy"
    assert all("barred spiral galaxy" in c for c in caps)
    assert len(set(caps)) == len(caps) >= 5
    shuffled = label_to_captions("elliptical", np.random.default_rng(0), n=3)
    assert len(shuffled) == 3 and all("an elliptical galaxy" in c.lower() for c in shuffled)
    assert label_to_captions("merger")[0] == "Merging galaxies"
    assert "an edge-on disk galaxy" in label_to_captions("edge-on")[1]
    assert human_name("my_custom_label") == "my custom label"
    assert all(
        len(c.split()) < MAX_WORDS for c in label_to_captions("some very long user label name")
    )


def test_caption_for_label():
    assert caption_for_label("spiral") == "A spiral galaxy"
    rng = np.random.default_rng(0)
    caps = {caption_for_label("ring", rng) for _ in range(30)}
    assert len(caps) >= 5 and all("ring galaxy" in c for c in caps)


def test_every_class_has_a_caption_rule_and_unknown_classes_still_caption():
    from galaxy_explorer.train import synth
    from galaxy_explorer.train.captions import CLASS_CAPTIONS

    # dispatch by class, like the synth's samplers and renderers
    assert set(CLASS_CAPTIONS) == set(CLASSES) == set(synth._SAMPLERS) == set(synth._RENDERERS)
    assert all(rule.details is not None for rule in CLASS_CAPTIONS.values())
    p = sample_params(np.random.default_rng(1), "spiral")
    p.cls = "polar_ring"  # a class the rules do not know: a plain caption naming it
    cap = caption_for(p, np.random.default_rng(2))
    assert "polar ring" in cap.lower() and cap.endswith(".")
