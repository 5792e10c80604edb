"""Free-text queries written independently of the caption templates (train/captions.py).

Used by the acceptance evaluation (text→image recall@10 on a held-out synthetic set) and by
the bundled-model sanity test. Written before reading the caption generator, on purpose: they
use words and phrasings a person would type, not the templates' vocabulary.
"""

from __future__ import annotations

#: intended main class (class ids of ``synth.MAIN_CLASSES``) -> queries
PARAPHRASE_QUERIES: dict[str, list[str]] = {
    "elliptical": [
        "smooth featureless oval blob of old red stars",
        "a round reddish galaxy with no structure",
        "giant elliptical",
        "egg-shaped galaxy that fades smoothly from the centre",
    ],
    "lenticular": [
        "S0 galaxy: a disk and bulge without any arms",
        "lens-shaped galaxy with a smooth disc and no spiral pattern",
        "armless disk galaxy with a big central bulge",
    ],
    "spiral": [
        "galaxy with prominent arms",
        "face-on pinwheel with blue winding arms",
        "a disk galaxy showing a spiral pattern",
        "grand design spiral seen from above",
    ],
    "barred_spiral": [
        "spiral with a straight bar across the middle",
        "galaxy whose arms start from the ends of a central bar",
        "SB galaxy with an elongated bar of stars",
    ],
    "edge_on": [
        "cigar-shaped disk seen from the side",
        "a thin flat disc viewed exactly sideways with a dark dust lane",
        "needle-like galaxy seen edge on",
    ],
    "irregular": [
        "messy clumpy galaxy with no clear shape",
        "patchy blue star-forming galaxy without symmetry",
        "chaotic dwarf galaxy with bright knots",
    ],
    "merger": [
        "two galaxies colliding",
        "interacting pair with tidal tails",
        "a pair of galaxies merging into one",
        "galaxies pulling each other apart with long streams of stars",
    ],
}

#: plain zero-shot prompts, one per main class
PLAIN_PROMPTS: dict[str, str] = {
    "elliptical": "an elliptical galaxy",
    "lenticular": "a lenticular galaxy",
    "spiral": "a spiral galaxy",
    "barred_spiral": "a barred spiral galaxy",
    "edge_on": "an edge-on galaxy",
    "irregular": "an irregular galaxy",
    "merger": "a merging galaxy",
}
