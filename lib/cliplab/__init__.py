"""cliplab: replications of CLIP-paper analyses on a procedural world, with the real-model path kept open."""

__version__ = "0.1.0"
