"""Summary-style morphology captions for synthetic galaxies and for labelled cutouts.

:func:`caption_for` turns the true parameters of a synthetic cutout (see
:class:`galaxy_explorer.train.galaxy_params.GalaxyParams`) into a short description in the
style of the seed model's training text, e.g. "A barred spiral galaxy with loosely wound
arms, a bright elongated bar and a prominent central bulge". Wording varies (synonyms, clause
order, which optional details are mentioned) so that free text written by people matches;
captions stay well under CLIP's 77-token limit (< 40 words). What a caption says about each
class is a :class:`ClassCaption` rule in :data:`CLASS_CAPTIONS`, dispatched by class as the
synth dispatches its samplers and renderers; the captions drawn for a seed are pinned by
``tests/train/test_caption_pins.py``.

:func:`label_to_captions` turns a plain class label (from a ``path,label`` CSV) into captions
with templates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from galaxy_explorer.train.galaxy_params import GalaxyParams, dust_lane_visible

#: human-readable name of each class id
CLASS_NAMES: dict[str, str] = {
    "elliptical": "elliptical galaxy",
    "lenticular": "lenticular galaxy",
    "spiral": "spiral galaxy",
    "barred_spiral": "barred spiral galaxy",
    "edge_on": "edge-on disk galaxy",
    "irregular": "irregular galaxy",
    "merger": "merging galaxies",
    "ring": "ring galaxy",
    "compact": "compact source",
    "artifact": "artifact",
}

#: maximum words in a caption (a proxy well inside CLIP's 77 BPE tokens)
MAX_WORDS: int = 40

#: templates for turning a label into a caption; "{}" is the human name (with article)
LABEL_TEMPLATES: tuple[str, ...] = (
    "{a}",
    "an image of {a}",
    "a survey cutout of {a}",
    "{a} in a sky survey image",
    "a telescope image showing {a}",
    "a cutout centred on {a}",
    "{a}, seen in g, r and z bands",
    "a colour image of {a}",
    "this is {a}",
    "a galaxy survey cutout: {a}",
)

_PLURAL = {"merger"}


def _article(phrase: str) -> str:
    w = phrase.split()[0].lower() if phrase else ""
    if w in ("merging", "interacting", "two", "a", "an", "the") or phrase.endswith(
        ("galaxies", "pairs")
    ):
        return phrase
    vowel = w[:1] in "aeiou" and not w.startswith(("one", "uni"))
    if w.startswith(("s0", "sb", "hii", "e0")):  # read out letter by letter: "an S0 galaxy"
        vowel = True
    return ("an " if vowel else "a ") + phrase


def human_name(label: str) -> str:
    """Human name for a class id ("barred_spiral" → "barred spiral galaxy"); other labels as words."""
    key = label.strip()
    if key in CLASS_NAMES:
        return CLASS_NAMES[key]
    norm = key.lower().replace("-", "_").replace(" ", "_")
    if norm in CLASS_NAMES:
        return CLASS_NAMES[norm]
    return key.replace("_", " ").strip()


def label_to_captions(
    label: str, rng: np.random.Generator | None = None, n: int | None = None
) -> list[str]:
    """Captions for a plain label, from :data:`LABEL_TEMPLATES`.

    Parameters
    ----------
    label : str
        A class id (``"barred_spiral"``), a human name, or any user label.
    rng : numpy.random.Generator, optional
        When given, the captions come back in a random order.
    n : int, optional
        Return only the first ``n``.

    Returns
    -------
    list of str
    """
    name = human_name(label)
    a = _article(name)
    caps = [t.format(a=a) for t in LABEL_TEMPLATES]
    caps = [c[0].upper() + c[1:] for c in caps]
    if rng is not None:
        order = rng.permutation(len(caps))
        caps = [caps[i] for i in order]
    return caps[:n] if n is not None else caps


def caption_for_label(label: str, rng: np.random.Generator | None = None) -> str:
    """One caption for a plain label: a template from :data:`LABEL_TEMPLATES` drawn with ``rng``
    (the plain "a/an <name>" form when ``rng`` is None)."""
    caps = label_to_captions(label)
    if rng is None:
        return caps[0]
    return caps[int(rng.integers(len(caps)))]


def with_article(phrase: str) -> str:
    """``"elliptical galaxy"`` → ``"an elliptical galaxy"``; plurals are left as they are."""
    return _article(phrase)


# ----------------------------------------------------------------------------------------------
# caption from parameters
# ----------------------------------------------------------------------------------------------
def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _orientation(p: GalaxyParams, rng: np.random.Generator) -> str | None:
    i = p.inclination_deg
    if i < 30:
        return _pick(rng, ["seen face-on", "viewed face-on", "oriented face-on", "seen from above"])
    if i < 55:
        return _pick(
            rng, ["moderately inclined", "seen at an angle", "at intermediate inclination"]
        )
    return _pick(rng, ["highly inclined", "steeply inclined", "strongly tilted"])


def _size_word(p: GalaxyParams) -> str | None:
    """Size as it appears in the cutout (relative to the field of view)."""
    big = max(p.re_arcsec * 2, p.disk_h_arcsec * 2.5, p.ring_radius_arcsec * 1.3) / p.fov_arcsec
    if big > 0.33:
        return "large"
    if big < 0.13:
        return "small"
    return None


def _bright_word(p: GalaxyParams, rng: np.random.Generator) -> str | None:
    """Brightness as it appears (surface brightness: the magnitude before the zoom)."""
    mag = p.mag_r + 5 * math.log10(max(p.zoom, 1e-3))
    if mag < 15.5:
        return _pick(rng, ["bright", "very bright"])
    if mag > 17.8:
        if p.cls == "compact":
            return _pick(rng, ["faint", "dim"])
        return _pick(rng, ["faint", "dim", "low surface brightness"])
    return None


def _colour_word(g_r: float, rng: np.random.Generator) -> str | None:
    if g_r > 0.78:
        return _pick(rng, ["red", "reddish", "orange-red"])
    if g_r > 0.6:
        return _pick(rng, ["yellowish", "yellow", "golden"])
    if g_r < 0.3:
        return _pick(rng, ["blue", "bluish"])
    return None


def _tightness(p: GalaxyParams, rng: np.random.Generator) -> str:
    if p.pitch_deg < 15:
        return _pick(rng, ["tightly wound", "tightly wrapped", "closely wound"])
    if p.pitch_deg < 24:
        return _pick(rng, ["moderately wound", "medium-wound"])
    return _pick(rng, ["loosely wound", "open", "widely spaced"])


def _bulge_phrase(bt: float, rng: np.random.Generator) -> str:
    if bt < 0.1:
        return _pick(rng, ["a tiny bulge", "a small faint bulge", "almost no bulge"])
    if bt < 0.28:
        return _pick(rng, ["a modest central bulge", "a small bright bulge", "a compact nucleus"])
    return _pick(
        rng, ["a prominent central bulge", "a large bright bulge", "a dominant yellow bulge"]
    )


_NUM = {1: "one", 2: "two", 3: "three", 4: "four"}


def _arm_phrase(p: GalaxyParams, rng: np.random.Generator) -> str:
    tight = _tightness(p, rng)
    if p.arm_style == "flocculent":
        core = _pick(
            rng,
            [
                "patchy flocculent arms",
                "fragmented flocculent arms",
                "many short patchy arm segments",
            ],
        )
        return f"{tight} {core}" if rng.random() < 0.4 and not core.startswith("many") else core
    if p.arm_style == "multi_arm":
        return _pick(
            rng, [f"{_NUM.get(p.n_arms, 'several')} {tight} spiral arms", f"multiple {tight} arms"]
        )
    num = _NUM.get(p.n_arms, "several")
    return _pick(
        rng,
        [
            f"{tight} arms",
            f"{num} {tight} spiral arms",
            f"{num} well-defined {tight} arms",
            f"{tight} grand-design arms",
        ],
    )


_DetailsFn = Callable[[GalaxyParams, np.random.Generator, list[str], list[str], list[str]], None]


@dataclass(frozen=True)
class ClassCaption:
    """How captions describe one class.

    Attributes
    ----------
    details : callable
        ``details(params, rng, essential, optional, adjectives)`` appends the class's own
        phrases: essential ones (always said), optional ones (some said) and adjectives of
        the noun. It draws from ``rng`` in a fixed order, so a seed always gives one caption.
    colour : bool
        Whether a colour adjective ("red", "bluish") may describe the noun.
    size, brightness : bool
        Whether "large" / "small" and "bright" / "faint" may describe the noun.
    field : bool
        Whether neighbouring background galaxies may be mentioned.
    """

    details: _DetailsFn | None = None
    colour: bool = False
    size: bool = True
    brightness: bool = True
    field: bool = True


def _elliptical_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Shape, light profile and stellar population of an elliptical."""
    q = p.axis_ratio
    if q > 0.85:
        adj.append(_pick(rng, ["round", "nearly circular"]))
    elif q > 0.65:
        adj.append(_pick(rng, ["slightly elongated", "oval"]))
    else:
        adj.append(_pick(rng, ["elongated", "flattened", "oval"]))
    ess.append(
        _pick(
            rng,
            [
                "a smooth featureless light profile",
                "no visible structure",
                "smooth, featureless light",
            ],
        )
    )
    if p.sersic_n > 4.5:
        opt.append(_pick(rng, ["a bright concentrated core", "a sharply peaked centre"]))
    else:
        opt.append(
            _pick(
                rng,
                ["a light profile that fades smoothly outwards", "a diffuse extended envelope"],
            )
        )
    opt.append(
        _pick(rng, ["old red stars", "an old stellar population", "no dust or star formation"])
    )
    if p.boxiness > 2.2:
        opt.append("slightly boxy isophotes")


def _lenticular_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Bulge and armless disk of a lenticular."""
    ess.append(_bulge_phrase(max(p.bulge_to_total, 0.3), rng))
    ess.append(
        _pick(
            rng,
            [
                "a smooth featureless disk",
                "a smooth disc without spiral arms",
                "a disk with no arms",
            ],
        )
    )
    if p.subtype == "with_lens":
        opt.append(_pick(rng, ["a faint lens around the bulge", "a flat inner lens"]))
    opt.append(_pick(rng, ["no spiral structure", "no signs of star formation", "no visible dust"]))
    o = _orientation(p, rng)
    if o:
        opt.append(o)


def _spiral_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Arms, bulge, knots, dust and orientation of a spiral (barred or not)."""
    ess.append(_arm_phrase(p, rng))
    opt.append(_bulge_phrase(p.bulge_to_total, rng))
    if p.n_knots > 18:
        opt.append(
            _pick(
                rng,
                [
                    "bright blue star-forming knots",
                    "blue HII regions along the arms",
                    "clumps of young blue stars",
                ],
            )
        )
    if p.dust_lane > 0.45:
        opt.append(_pick(rng, ["dark dust lanes along the arms", "dusty arms"]))
    if p.cls == "spiral" and p.has_ring:
        opt.append(_pick(rng, ["a faint ring", "a ring-like arm pattern"]))
    if p.g_r_young < 0.25:
        opt.append(_pick(rng, ["blue arms", "a blue disk"]))
    o = _orientation(p, rng)
    if o:
        opt.append(o)


def _barred_spiral_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """The bar of a barred spiral, then what every spiral has."""
    ess.append(
        _pick(
            rng,
            [
                "a bright elongated bar",
                "a strong central bar",
                "a straight stellar bar",
                "a prominent bar",
            ],
        )
    )
    opt.append(
        _pick(rng, ["arms emerging from the ends of the bar", "arms starting at the bar ends"])
    )
    if p.has_ring:
        opt.append(_pick(rng, ["an inner ring around the bar", "an inner ring encircling the bar"]))
    _spiral_details(p, rng, ess, opt, adj)


def _edge_on_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Disk thickness, dust lane and bulge of an edge-on disk."""
    z = float(p.extra.get("z0", 0.1 * p.disk_h_arcsec)) / max(p.disk_h_arcsec, 1e-6)
    ess.append(
        _pick(rng, ["a razor-thin disk", "a very thin flat disk"])
        if z < 0.1
        else _pick(rng, ["a thin disk", "a flat elongated disk", "a narrow disk"])
    )
    if dust_lane_visible(p):
        ess.append(
            _pick(
                rng,
                [
                    "a dark dust lane",
                    "a dark dust lane along the midplane",
                    "a dust lane cutting through the middle",
                ],
            )
        )
    elif p.dust_lane > 0:
        opt.append(_pick(rng, ["reddened by dust", "a dusty midplane"]))
    else:
        opt.append(_pick(rng, ["no visible dust lane", "no dust lane"]))
    if p.bulge_to_total > 0.2:
        opt.append(_pick(rng, ["a prominent central bulge", "a bright bulge"]))
        if p.boxiness > 2.6:
            opt.append("a boxy bulge")
    else:
        opt.append(_pick(rng, ["a small bulge", "little or no bulge"]))
    opt.append(_pick(rng, ["a spindle shape", "a knife-edge profile", "a narrow streak of light"]))
    adj.append(_pick(rng, ["thin", "flat"]))


def _irregular_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Clumps and asymmetry of an irregular."""
    ess.append(
        _pick(
            rng,
            [
                "clumpy irregular structure",
                "a patchy, asymmetric shape",
                "no regular structure",
            ],
        )
    )
    opt.append(
        _pick(
            rng,
            ["bright blue star-forming knots", "scattered blue clumps", "knots of young stars"],
        )
    )
    opt.append(_pick(rng, ["no spiral arms", "no clear centre", "a lopsided light distribution"]))
    adj.append(_pick(rng, ["clumpy", "disordered", "patchy"]))
    if p.subtype == "dwarf":
        adj.append("dwarf")


def _merger_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Tails, companion and bridge of a merger."""
    if p.n_tails >= 2:
        ess.append(_pick(rng, ["long tidal tails", "curved tidal tails", "sweeping tidal streams"]))
    else:
        ess.append(_pick(rng, ["a tidal tail", "a faint tidal plume", "disturbed outskirts"]))
    if p.companion_flux_ratio < 0.55:
        opt.append(_pick(rng, ["a smaller companion", "an unequal-mass companion"]))
    else:
        opt.append(_pick(rng, ["two similar bright nuclei", "two comparable cores"]))
    if p.has_bridge:
        opt.append(
            _pick(rng, ["a bridge of stars between them", "a luminous bridge connecting the pair"])
        )
    if p.companion_sep_arcsec < 8:
        opt.append(_pick(rng, ["overlapping bodies", "very close nuclei"]))
    opt.append(_pick(rng, ["distorted shapes", "disturbed morphology"]))


def _ring_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """The ring, core and gap of a ring galaxy."""
    if p.subtype == "collisional":
        ess.append(
            _pick(
                rng,
                [
                    "a bright blue ring of star formation",
                    "a knotty blue ring",
                    "a clumpy outer ring",
                ],
            )
        )
        opt.append(_pick(rng, ["an off-centre nucleus", "a displaced central core"]))
    else:
        ess.append(
            _pick(
                rng,
                ["a smooth detached ring", "a nearly perfect ring", "a symmetric outer ring"],
            )
        )
        opt.append(_pick(rng, ["a round central core", "a compact yellow nucleus"]))
    opt.append(_pick(rng, ["an empty gap between core and ring", "a dark gap inside the ring"]))
    o = _orientation(p, rng)
    if o and p.inclination_deg > 40:
        opt.append(o)


def _compact_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """How resolved a compact source is."""
    if p.subtype == "point":
        ess.append(_pick(rng, ["point-like", "unresolved", "star-like"]))
    else:
        ess.append(_pick(rng, ["barely resolved", "very small and round", "tiny and concentrated"]))
    adj.append(_pick(rng, ["small", "tiny"]))


def _artifact_details(
    p: GalaxyParams, rng: np.random.Generator, ess: list[str], opt: list[str], adj: list[str]
) -> None:
    """Spikes, halo and trails of an artifact."""
    if p.has_spikes:
        ess.append(
            _pick(
                rng,
                [
                    "a bright saturated star with diffraction spikes",
                    "a foreground star with four diffraction spikes",
                    "a glaring star with spikes",
                ],
            )
        )
        opt.append(_pick(rng, ["a bright halo", "scattered light around it"]))
        if p.extra.get("bleed"):
            opt.append("a bleed trail")
    if p.has_trail:
        band = {0: "blue", 1: "green", 2: "red"}.get(p.trail_band)
        t = _pick(rng, ["a satellite trail", "a straight streak", "a linear satellite streak"])
        ess.append(
            f"{t} in one band ({band})"
            if band and rng.random() < 0.5
            else f"{t} crossing the image"
        )


#: per-class caption rules, as the synth dispatches sampling and rendering by class; a class
#: without an entry gets only the shared phrases (size, brightness, field)
CLASS_CAPTIONS: dict[str, ClassCaption] = {
    "elliptical": ClassCaption(_elliptical_details, colour=True),
    "lenticular": ClassCaption(_lenticular_details, colour=True),
    "spiral": ClassCaption(_spiral_details),
    "barred_spiral": ClassCaption(_barred_spiral_details),
    "edge_on": ClassCaption(_edge_on_details),
    "irregular": ClassCaption(_irregular_details, colour=True),
    "merger": ClassCaption(_merger_details),
    "ring": ClassCaption(_ring_details, colour=True),
    "compact": ClassCaption(_compact_details, colour=True, size=False),
    "artifact": ClassCaption(_artifact_details, size=False, brightness=False, field=False),
}
_NO_RULE = ClassCaption()


def _details(p: GalaxyParams, rng: np.random.Generator) -> tuple[list[str], list[str], list[str]]:
    """(essential phrases, optional phrases, adjectives) for the class of ``p``."""
    ess: list[str] = []
    opt: list[str] = []
    adj: list[str] = []
    rule = CLASS_CAPTIONS.get(p.cls, _NO_RULE)
    col = _colour_word(p.g_r, rng)  # drawn for every class, so the stream stays aligned
    if rule.details is not None:
        rule.details(p, rng, ess, opt, adj)
    if col and rule.colour:
        adj.append(col)
    s = _size_word(p)
    if s and rule.size:
        adj.append(s)
    b = _bright_word(p, rng)
    if b and rule.brightness:
        adj.append(b)
    if p.n_neighbours >= 4 and rule.field:
        opt.append(
            _pick(rng, ["small background galaxies nearby", "faint neighbours in the field"])
        )
    if p.n_stars >= 3:
        opt.append(_pick(rng, ["foreground stars nearby", "several field stars"]))
    return ess, opt, adj


_NOUNS: dict[str, tuple[str, ...]] = {
    "elliptical": (
        "elliptical galaxy",
        "elliptical galaxy",
        "elliptical galaxy",
        "early-type elliptical galaxy",
        "elliptical",
        "elliptical (E-type) galaxy",
    ),
    "lenticular": (
        "lenticular galaxy",
        "lenticular galaxy",
        "lenticular galaxy",
        "S0 galaxy",
        "lenticular (S0) galaxy",
        "lenticular disk galaxy",
    ),
    "spiral": (
        "spiral galaxy",
        "spiral galaxy",
        "spiral galaxy",
        "spiral disk galaxy",
        "spiral",
        "late-type spiral galaxy",
    ),
    "barred_spiral": (
        "barred spiral galaxy",
        "barred spiral galaxy",
        "barred spiral galaxy",
        "barred spiral",
        "SB spiral galaxy",
        "barred spiral disk galaxy",
    ),
    "edge_on": (
        "edge-on disk galaxy",
        "edge-on disk galaxy",
        "edge-on galaxy",
        "edge-on galaxy",
        "disk galaxy seen edge-on",
        "edge-on disk",
    ),
    "irregular": (
        "irregular galaxy",
        "irregular galaxy",
        "irregular galaxy",
        "irregular star-forming galaxy",
        "galaxy of irregular type",
    ),
    "merger": (
        "pair of merging galaxies",
        "merging galaxies",
        "merging galaxies",
        "interacting galaxy pair",
        "galaxy merger",
        "merger of two galaxies",
        "pair of interacting, merging galaxies",
    ),
    "ring": ("ring galaxy", "ring galaxy", "ring-shaped galaxy", "galaxy with a ring"),
    "compact": (
        "compact source",
        "compact source",
        "point-like source",
        "compact object",
        "unresolved compact source",
    ),
    "artifact": ("image artifact", "artifact", "imaging artifact", "artifact in the image"),
}

#: subtype-specific nouns, drawn now and then
_SUBTYPE_NOUNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("elliptical", "giant"): ("giant elliptical galaxy",),
    ("irregular", "dwarf"): ("dwarf irregular galaxy",),
    ("ring", "collisional"): ("collisional ring galaxy",),
    ("ring", "hoag"): ("Hoag-type ring galaxy",),
    ("compact", "point"): ("compact point source",),
    ("compact", "blue_compact"): ("blue compact dwarf galaxy, a compact source",),
    ("artifact", "satellite_trail"): ("satellite trail artifact",),
    ("artifact", "bright_star"): ("bright star artifact",),
}


def _join(parts: list[str], rng: np.random.Generator) -> str:
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    conj = " and " if rng.random() < 0.85 else " plus "
    return ", ".join(parts[:-1]) + conj + parts[-1]


def _noun(p: GalaxyParams, rng: np.random.Generator) -> str:
    sub = _SUBTYPE_NOUNS.get((p.cls, p.subtype))
    if sub and rng.random() < 0.3:
        return _pick(rng, sub)
    if p.cls == "spiral" and rng.random() < 0.15:
        return {
            "grand_design": "grand-design spiral galaxy",
            "flocculent": "flocculent spiral galaxy",
        }.get(p.arm_style, "multi-armed spiral galaxy")
    return _pick(rng, _NOUNS.get(p.cls, (p.cls.replace("_", " "),)))


#: sentence forms, indexed by the style drawn in :func:`caption_for` (3 puts the details first)
_STYLES: tuple[str, ...] = (
    "{art} with {body}",
    "{art} showing {body}",
    "{art}: {body}",
    "{Body} in {art}",
    "{art} that has {body}",
    "{art} featuring {body}",
    "{art}. It has {body}",
    "{art} displaying {body}",
)


def _compose(head: str, with_parts: list[str], part_parts: list[str], style: int, rng) -> str:
    body = _join(with_parts, rng)
    art = _article(head)
    if not body:
        s = art
    else:
        s = _STYLES[style].format(art=art, body=body, Body=body[0].upper() + body[1:])
    if part_parts:
        extra = _join(part_parts, rng)
        if style == 3 or rng.random() < 0.7:
            s = f"{s}, {extra}"
        else:
            s = f"{extra[0].upper() + extra[1:]}, {s[0].lower() + s[1:]}"
    return s


def caption_for(params: GalaxyParams, rng: np.random.Generator) -> str:
    """A short varied caption describing a synthetic cutout from its true parameters.

    Parameters
    ----------
    params : GalaxyParams
        True parameters (class, morphology, colours ...).
    rng : numpy.random.Generator
        Chooses wording, which optional details appear and their order.

    Returns
    -------
    str
        One sentence (occasionally two) of at most :data:`MAX_WORDS` words that always names
        the class.
    """
    noun = _noun(params, rng)
    ess, opt, adj = _details(params, rng)
    rng.shuffle(opt)
    k_opt = int(rng.integers(0, min(len(opt), 3) + 1))
    chosen = opt[:k_opt]
    # adjectives: keep up to 2, order randomly
    rng.shuffle(adj)
    adj = adj[: int(rng.integers(0, min(len(adj), 2) + 1))]
    head = " ".join([*adj, noun])
    shuffle = rng.random() < 0.5
    style = int(rng.integers(0, len(_STYLES)))
    order = rng.permutation(len(ess) + len(chosen))
    disc = rng.random() < 0.25
    while True:
        details = ess + chosen
        if shuffle:
            details = [details[i] for i in order if i < len(details)]
        # "with" phrases need noun phrases; some ("seen face-on", "point-like") are participles
        with_parts = [d for d in details if d.split()[0] not in _PARTICIPLE_STARTS]
        part_parts = [d for d in details if d not in with_parts]
        s = _compose(head, with_parts, part_parts, style, rng)
        if len(s.split()) <= MAX_WORDS or not chosen:
            break
        chosen = chosen[:-1]
    if disc:  # British spelling now and then, as people type both
        s = s.replace("disk", "disc")
    s = s[0].upper() + s[1:]
    words = s.split()
    if len(words) > MAX_WORDS:
        s = " ".join(words[:MAX_WORDS]).rstrip(",;:")
    return s.rstrip(".") + "."


_PARTICIPLE_STARTS = frozenset(
    {
        "seen",
        "strongly",
        "reddened",
        "viewed",
        "oriented",
        "moderately",
        "highly",
        "steeply",
        "at",
        "point-like",
        "unresolved",
        "star-like",
        "barely",
        "very",
        "tiny",
    }
)

__all__ = [
    "CLASS_CAPTIONS",
    "CLASS_NAMES",
    "ClassCaption",
    "LABEL_TEMPLATES",
    "MAX_WORDS",
    "caption_for",
    "human_name",
    "label_to_captions",
]
