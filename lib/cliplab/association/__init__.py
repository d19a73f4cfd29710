"""The concept association bias (Tang et al., EMNLP 2023, "When are lemons purple?"): probes, metrics,
association strength from training captions, and the VQA-head mitigation.

    from cliplab.association import build_probes, run_probes, cab_by, association_strength, cab_vs_association
    probes = build_probes(world, "natural", n_pairs=200, seed=0)       # two objects side by side + controls
    scored = run_probes(loaded, probes)                               # "In this picture, the color of ..."
    cab_by(scored, "condition")                                       # Single, Two, Two*, third, CAB
    strength = association_strength(world, n_samples=50_000)          # P(colour | object), PMI from captions
    per_pair, rho = cab_vs_association(scored, strength)

Real photos: :func:`read_object_photos` + :func:`build_photo_probes` give the same table, scored the same way.
The VQA link (paper C4): :func:`vqa_data`, :func:`train_vqa_head`, :func:`head_scorer`, :func:`variant_sweep`.
Per-replicate statistics the claims are scored over (zoo models for C1/C2, head seeds for C4): ``series``.
"""

from cliplab.association.metrics import METRICS, cab, cab_by, cab_ci, cab_metrics, pair_cab, seed_summary
from cliplab.association.probes import (
    CONDITIONS,
    PROBE_COLUMNS,
    ProbeSet,
    build_photo_probes,
    build_probes,
    compose_pair,
    concat_probes,
    known_concepts,
    object_name,
    probe_concepts,
    read_object_photos,
)
from cliplab.association.scoring import (
    DEFAULT_TEMPLATE,
    Scorer,
    check_template,
    clip_scorer,
    colour_statements,
    predict_colours,
    run_probes,
    score_colour_statements,
)
from cliplab.association.series import (
    fold_series,
    head_seed_series,
    head_summary,
    model_metrics,
    model_series,
    model_summary,
    transformer_variants,
)
from cliplab.association.strength import (
    MEASURES,
    association_strength,
    cab_vs_association,
    caption_counts,
    pair_clusters,
    spearman_ci,
    spearman_pvalue,
    strength_from_counts,
)
from cliplab.association.vqa import (
    RESNET_STAGES,
    VARIANTS,
    VQA_TEMPLATE,
    FrozenFeatures,
    HeadVariant,
    TrainedHead,
    VQAConfig,
    VQAData,
    VQAHead,
    cab_vqa_rank_correlation,
    encode_frozen,
    head_scorer,
    image_tokens,
    text_tokens,
    train_vqa_head,
    variant_sweep,
    vqa_accuracy,
    vqa_data,
    zero_shot_vqa_accuracy,
)

__all__ = [
    "CONDITIONS", "DEFAULT_TEMPLATE", "MEASURES", "METRICS", "PROBE_COLUMNS", "RESNET_STAGES", "VARIANTS",
    "VQA_TEMPLATE", "FrozenFeatures", "HeadVariant", "ProbeSet", "Scorer", "TrainedHead", "VQAConfig", "VQAData", "VQAHead",
    "association_strength", "build_photo_probes", "build_probes", "cab", "cab_by", "cab_ci", "cab_metrics",
    "cab_vqa_rank_correlation", "cab_vs_association", "fold_series", "caption_counts", "check_template", "clip_scorer",
    "colour_statements", "compose_pair", "concat_probes", "encode_frozen", "head_scorer", "head_seed_series", "head_summary", "image_tokens", "known_concepts", "model_metrics", "model_series",
    "model_summary", "object_name", "pair_cab",
    "pair_clusters",
    "predict_colours", "probe_concepts", "read_object_photos", "run_probes", "score_colour_statements",
    "seed_summary", "spearman_ci", "spearman_pvalue", "strength_from_counts", "text_tokens", "train_vqa_head",
    "transformer_variants",
    "variant_sweep", "vqa_accuracy", "vqa_data", "zero_shot_vqa_accuracy",
]
