"""Procedural image–caption world: concepts, rendering, captions, corpora, domains and shards.

    from cliplab.world import World, WorldConfig, write_shards
    world = World(WorldConfig(seed=0))
    sample = world.sample(0)                      # image (uint8 32×32×3), caption, ground-truth meta
    write_shards(world, 10_000, "data/world/train")
"""

from cliplab.world.captions import TEMPLATES
from cliplab.world.colours import COLOURS
from cliplab.world.concepts import Concept, build_concepts, shared_parts, zipf_probabilities
from cliplab.world.config import DEFAULT_PALETTE, DOMAINS, WorldConfig
from cliplab.world.corpus import MIXED, Draw, Sample, World
from cliplab.world.frequencies import count_from_meta, frequencies_from_index, true_frequencies
from cliplab.world.scene import Scene, SceneObject
from cliplab.world.shards import encode_image, iter_shards, read_index, write_shards

__all__ = [
    "COLOURS", "Concept", "DEFAULT_PALETTE", "DOMAINS", "Draw", "MIXED", "Sample", "Scene", "SceneObject",
    "TEMPLATES", "World", "WorldConfig", "build_concepts", "count_from_meta", "encode_image",
    "frequencies_from_index", "iter_shards", "read_index", "shared_parts", "true_frequencies", "write_shards",
    "zipf_probabilities",
]
