"""Sharpness: Andriushchenko et al. (ICML 2023) and sharpness along CLIP weight interpolation
(Abdollahpoorrostam 2024).

``measures`` defines the 16 sharpness variants (worst/average case, L∞/L2, adaptive/standard, normalised or raw
logits) and ``stacked_mlp`` the fast path of its average case; Part A uses ``zoo`` (the population of small
nets), ``analysis`` (Kendall τ per factor), ``diagonal_nets`` (A-C3) and ``separable_toy`` (A-C4); Part B uses
``interpolation`` (fine-tuning a zoo CLIP, WiSE-FT paths, layer-wise sharpness, stragglers).
"""
