"""Galaxy Explorer: explore galaxy survey cutouts through a CLIP-style vision-language model."""

__version__ = "0.1.0"
