"""Everyday-words captions: how someone without the jargon describes each kind of galaxy.

The morphology captions (:mod:`galaxy_explorer.train.captions`) name the class and describe
it in an astronomer's words ("an elliptical galaxy with a smooth featureless light
profile"). People searching a folder of cutouts write "a soft round ball of light" or "a
thin line of light seen from the side". :func:`everyday_caption` draws such a description
of a class from a small grammar (a noun phrase, up to two adjectives, an optional tail),
so that the head learns to put these words next to the right images too
(issue 9: everyday-words queries for ellipticals found 1-3 of 10).

The grammar never names the class with its technical word and never reproduces a query of
the evaluation lists (:data:`galaxy_explorer.train.real_proxies.EVERYDAY_QUERIES`): a
caption equal to one, or containing one, is drawn again.
"""

from __future__ import annotations

import re

import numpy as np

#: per class: (noun phrases with "{adj}", adjectives, tails); "{adj}" takes 0-2 adjectives
GRAMMAR: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "elliptical": (
        (
            "a {adj} ball of light",
            "a {adj} ball of stars",
            "a {adj} glow",
            "a {adj} swarm of stars",
            "a {adj} patch of light",
            "a {adj} galaxy",
            "a {adj} puff of starlight",
            "a {adj} spot of light",
            "a {adj} haze of stars",
        ),
        (
            "smooth",
            "round",
            "oval",
            "soft",
            "fuzzy",
            "plain",
            "even",
            "yellowish",
            "reddish",
            "golden",
            "orange",
            "pale",
            "hazy",
            "diffuse",
            "elongated",
            "stretched",
            "bright",
            "big",
        ),
        (
            "with no arms",
            "with no arms and no dust",
            "with no structure at all",
            "without any detail",
            "with a bright centre fading outwards",
            "that fades gently towards its edges",
            "made of old red stars",
            "full of old yellow stars",
            "with a bright concentrated centre",
            "with nothing going on inside",
            "like a cotton ball",
            "with no disc or spiral",
            "shaped like a rugby ball",
        ),
    ),
    "lenticular": (
        (
            "a {adj} disc with a bright middle",
            "a {adj} lens-shaped galaxy",
            "a {adj} galaxy like a fried egg",
            "a {adj} flat disc of stars",
        ),
        ("smooth", "plain", "yellowish", "armless", "quiet", "bright"),
        (
            "but no arms",
            "with a bulge and no spiral pattern",
            "with no star-forming clumps",
            "with a smooth disc around a round core",
            "",
        ),
    ),
    "spiral": (
        (
            "a {adj} pinwheel of stars",
            "a {adj} whirlpool of stars",
            "a {adj} swirl of stars",
            "a {adj} galaxy with curling arms",
            "a {adj} disc with arms",
            "a {adj} spinning galaxy",
        ),
        ("beautiful", "bright", "bluish", "swirling", "face-on", "tilted", "big", "delicate"),
        (
            "with arms winding out from a bright centre",
            "with curved arms around a yellow core",
            "seen from above",
            "seen at an angle, its arms still visible",
            "with blue arms and a yellow middle",
            "with dark dust between the arms",
            "",
        ),
    ),
    "barred_spiral": (
        (
            "a {adj} pinwheel with a bar",
            "a {adj} swirl of stars with a straight bar",
            "a {adj} galaxy with a bar across its centre",
        ),
        ("bright", "bluish", "big", "swirling"),
        (
            "with arms starting at the ends of the bar",
            "with a straight line of stars through the middle",
            "",
        ),
    ),
    "edge_on": (
        (
            "a {adj} line of light",
            "a {adj} sliver of light",
            "a {adj} disc seen from its edge",
            "a {adj} galaxy seen side-on",
            "a {adj} spindle of stars",
            "a {adj} flat galaxy seen edgewise",
            "a {adj} strip of stars",
        ),
        ("thin", "long", "flat", "narrow", "slim", "straight", "bright"),
        (
            "with a dark dust lane along the middle",
            "with a small bulge in the centre",
            "like a knife blade",
            "like a cigar",
            "viewed along its plane",
            "cut by a dark line of dust",
            "",
        ),
    ),
    "irregular": (
        (
            "a {adj} cloud of stars",
            "a {adj} galaxy",
            "a {adj} jumble of stars",
            "a {adj} mess of stars and gas",
            "a {adj} scatter of bright knots",
            "a {adj} clump of stars",
            "a {adj} splash of light",
        ),
        (
            "chaotic",
            "untidy",
            "knotty",
            "blotchy",
            "bluish",
            "disordered",
        ),
        (
            "with no arms and no centre",
            "with bright blue clumps scattered around",
            "with no symmetry",
            "full of young blue stars",
            "without a clear shape or core",
            "with pink star-forming knots",
            "",
        ),
    ),
    "merger": (
        (
            "two galaxies {adj}crashing into each other",
            "a pair of galaxies {adj}pulling each other apart",
            "two galaxies {adj}colliding",
            "galaxies {adj}tangled together",
        ),
        ("", "violently ", "slowly "),
        ("with long tails of stars", "with streams of stars between them", ""),
    ),
    "ring": (
        (
            "a {adj} ring of stars",
            "a {adj} galaxy shaped like a hoop",
            "a {adj} circle of stars with a core",
        ),
        ("bright", "blue", "hollow", "round"),
        ("with an empty gap inside", "like a doughnut", ""),
    ),
    "compact": (
        (
            "a {adj} dot of light",
            "a {adj} point of light",
            "a {adj} speck",
        ),
        ("tiny", "small", "sharp", "star-like"),
        ("barely bigger than a star", ""),
    ),
    "artifact": (
        (
            "a {adj} star with spikes",
            "a {adj} line across the picture",
            "a {adj} glare",
        ),
        ("bright", "straight", "saturated"),
        ("that is not a galaxy", "from the camera", ""),
    ),
}


def _blocked(caption: str, forbid: tuple[str, ...]) -> bool:
    c = caption.lower().rstrip(".")
    return any(f in c for f in forbid)


def everyday_caption(
    cls: str, rng: np.random.Generator, forbid: tuple[str, ...] | None = None
) -> str:
    """One everyday-words description of a galaxy of class ``cls``.

    Parameters
    ----------
    cls : str
        A class id of :data:`galaxy_explorer.train.captions.CLASS_NAMES`.
    rng : numpy.random.Generator
        Chooses noun phrase, adjectives and tail.
    forbid : tuple of str, optional
        Lower-case texts a caption may not contain; by default the evaluation's
        everyday-words queries.

    Returns
    -------
    str
        A caption such as "A soft yellowish glow that fades gently towards its edges."

    Raises
    ------
    KeyError
        For a class without a grammar.
    """
    if forbid is None:
        from galaxy_explorer.train.real_proxies import EVERYDAY_QUERIES

        forbid = tuple(q.lower() for q, _ in EVERYDAY_QUERIES)
    nouns, adjs, tails = GRAMMAR[cls]
    for _ in range(100):
        noun = nouns[int(rng.integers(len(nouns)))]
        k = int(rng.integers(0, 3))
        if noun.endswith("{adj} galaxy"):  # "a galaxy" alone says nothing
            k = max(k, 1)
        if "{adj} " not in noun:  # "two galaxies {adj}colliding": one adverb at most
            k = min(k, 1)
        picked = [
            adjs[int(i)] for i in rng.choice(len(adjs), size=min(k, len(adjs)), replace=False)
        ]
        phrase = " ".join(noun.format(adj=", ".join(picked)).split())
        phrase = re.sub(r"^a (?=[aeiou])", "an ", phrase)
        tail = tails[int(rng.integers(len(tails)))] if rng.random() < 0.7 else ""
        s = f"{phrase} {tail}".strip()
        s = " ".join(s.split())
        s = s[0].upper() + s[1:] + "."
        if not _blocked(s, forbid):
            return s
    raise RuntimeError(f"no everyday caption for {cls!r} avoids the forbidden texts")


def everyday_pairs(
    labels: list[str], fraction: float, seed: int, classes: tuple[str, ...] | None = None
) -> tuple[list[int], list[str]]:
    """Extra training pairs: indices of a ``fraction`` of the images (of ``classes``, all
    with a grammar by default) and an everyday caption for each, deterministic in ``seed``."""
    rng = np.random.default_rng([seed, 31])
    idx, caps = [], []
    for i, lab in enumerate(labels):
        if lab not in GRAMMAR or (classes is not None and lab not in classes):
            continue
        if rng.random() < fraction:
            idx.append(i)
            caps.append(everyday_caption(lab, rng))
    return idx, caps


__all__ = ["GRAMMAR", "everyday_caption", "everyday_pairs"]
