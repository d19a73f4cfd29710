"""Tiny open_clip CLIPs for the procedural world, and one loader for every model (real, file, folder, zoo).

Importing this package registers cliplab's architectures (``cliplab-tiny``, ``cliplab-small``,
``cliplab-base``) with open_clip.
"""

from cliplab.models.checkpoint import read_card, save_checkpoint
from cliplab.models.loading import LoadedModel, UnknownModel, WeightsUnavailable, load_model, zoo_models
from cliplab.models.registry import model_config, model_names, register_configs
from cliplab.models.training import TrainConfig, TrainData, TrainResult, WorldSamples, prepare_data, train_clip

register_configs()

__all__ = [
    "LoadedModel",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "UnknownModel",
    "WeightsUnavailable",
    "WorldSamples",
    "load_model",
    "model_config",
    "model_names",
    "prepare_data",
    "read_card",
    "register_configs",
    "save_checkpoint",
    "train_clip",
    "zoo_models",
]
