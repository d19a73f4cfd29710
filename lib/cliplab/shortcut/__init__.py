"""Shortcut learning (Hermann et al., ICLR 2024): availability vs predictivity, and shortcut bias.

One module per idea, bottom up: ``framework`` (latents, embeddings, the data of a cell), ``reference`` (the
Bayes-optimal rule, LDA, reliance), ``networks`` (batched MLPs and the sweeps), ``kernels`` (kernel machines,
C5), ``summaries`` (seed-level statistics) and ``images`` (the CNN image arm, C4). The names the notebook uses
are re-exported here, so ``from cliplab import shortcut as sc; sc.run_sweep(...)`` reads as one API.
"""

from cliplab.shortcut.framework import (
    Embedding,
    ShortcutConfig,
    ShortcutData,
    check_latents,
    latent_covariance,
    latent_mean,
    make_data,
    probe_grid,
    random_embedding,
    sample_latents,
)
from cliplab.shortcut.kernels import (
    KERNELS,
    kernel_matrix,
    kernel_predictor,
    kernel_sweep,
    ntk_predicted_sign,
)
from cliplab.shortcut.networks import (
    ARCHS,
    RESULT_COLUMNS,
    BatchedMLP,
    TrainConfig,
    evaluate_models,
    init_mlp,
    nesting_sweep,
    reference_metrics,
    result_row,
    run_sweep,
    sweep_data,
    train_mlps,
)
from cliplab.shortcut.reference import (
    accuracy,
    bayes_decision,
    bayes_weights,
    fit_lda,
    hard_decision,
    reliance,
)
from cliplab.shortcut.summaries import (
    depth_replicates,
    grid_replicates,
    image_replicates,
    kernel_replicates,
    seed_cell,
    seed_means,
    seed_slopes,
    summarise,
)

__all__ = [
    "ARCHS",
    "KERNELS",
    "RESULT_COLUMNS",
    "BatchedMLP",
    "Embedding",
    "ShortcutConfig",
    "ShortcutData",
    "TrainConfig",
    "accuracy",
    "bayes_decision",
    "bayes_weights",
    "check_latents",
    "depth_replicates",
    "evaluate_models",
    "fit_lda",
    "grid_replicates",
    "hard_decision",
    "image_replicates",
    "init_mlp",
    "kernel_matrix",
    "kernel_predictor",
    "kernel_replicates",
    "kernel_sweep",
    "latent_covariance",
    "latent_mean",
    "make_data",
    "nesting_sweep",
    "ntk_predicted_sign",
    "probe_grid",
    "random_embedding",
    "reference_metrics",
    "reliance",
    "result_row",
    "run_sweep",
    "sample_latents",
    "seed_cell",
    "seed_means",
    "seed_slopes",
    "summarise",
    "sweep_data",
    "train_mlps",
]
