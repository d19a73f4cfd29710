"""Part B of the sharpness replication: sharpness along WiSE-FT weight interpolation of a CLIP classifier.

Abdollahpoorrostam (2024) asks whether sharpness predicts which WiSE-FT interpolations θ(α) = (1−α)θ_zs + αθ_ft
generalise out of distribution, finds that whole-model sharpness does not but the sharpness of a few
"straggler" layers does, and that sparsifying the straggler layers' fine-tuning update helps
(``docs/papers/sharpness_in_clip_interpolation.md``). No code was released, so every choice below is ours and
stated:

* **Model** (:class:`ZeroShotClassifier`): the CLIP image tower followed by a bias-free linear head on
  L2-normalised features, initialised to logit_scale × the zero-shot class embeddings (open_clip's
  ``build_zero_shot_classifier`` via ``cliplab.eval.class_weights``) — WiSE-FT's zero-shot head.
* **Fine-tuning** (:func:`finetune`): AdamW on every parameter, head included, at a constant learning rate;
  BatchNorm layers stay in eval mode (running statistics frozen at their pretrained values, so both endpoints
  share them).
* **Interpolation** (:func:`interpolate_state`): every floating-point state-dict entry, head included (as
  ``mlfoundations/wise-ft``); non-float entries must agree and are copied. α = 0 and α = 1 return the
  endpoints exactly.
* **Layers** (:func:`layer_groups`): residual/transformer blocks (parameter names up to the first numeric
  index, e.g. ``visual.layer1.0``), the stem (``visual.conv1``… ``bn3``, or a ViT's patch/positional
  embeddings and ``ln_pre``) as one group, every other top-level module of the tower (``visual.attnpool``,
  ``visual.ln_post`` …) and the head.
* **Straggler layers** (:func:`stragglers`): the card's definition (b), *drift* r_l = ‖θ_ft,l − θ_zs,l‖ /
  ‖θ_zs,l‖ over the group's parameters; the ``k`` groups with the largest drift are the stragglers (ties by
  name). The barrier B_l of definition (a) is computed as well (:func:`layer_barriers`) and reported.
* **Sparsification** (:func:`sparsify_task_vector`): in the straggler groups keep the ``keep`` fraction of
  task-vector entries with the largest magnitude (per tensor, ``ceil(keep·numel)`` entries), zero the rest;
  then θ_α = θ_zs + α·(M ⊙ τ) in those groups (the card's task-vector reading, not weight pruning).
* **Sharpness points** (:func:`mixed_subset`): sharpness and barriers use ``n`` training points drawn by one
  seeded shuffle; task data arrive grouped by class, so a prefix would be (almost) one class.
* **τ** (:func:`tau_over_path`): Kendall τ over α of OOD accuracy with the whole-model S and with each layer's
  S_l (card §3.4); the straggler measure is the mean |τ| over the straggler layers, each taken on its own.
  A constant curve gets τ = 0 by convention; :func:`n_flat` counts the paths where that happened.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cliplab.sharpness.measures import SharpnessConfig, layerwise_sharpness, model_device, sharpness
from cliplab.sharpness.zoo import TaskData, single_threaded
from cliplab.stats import kendall_tau

State = dict[str, Tensor]
ALPHAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
STEM = re.compile(r"^visual\.(conv\d+|bn\d+|class_embedding|positional_embedding|ln_pre)(\.|$)")


# ------------------------------------------------------------------------------------------------ the model


class ZeroShotClassifier(nn.Module):
    """logits = head(normalize(visual(x))); the head starts as logit_scale × zero-shot class embeddings."""

    def __init__(self, visual: nn.Module, class_embeddings: Tensor, logit_scale: float = 100.0) -> None:
        super().__init__()
        if class_embeddings.ndim != 2:
            raise ValueError(f"class_embeddings must be (n_classes, dim), got {tuple(class_embeddings.shape)}")
        self.visual = visual
        self.head = nn.Linear(class_embeddings.shape[1], class_embeddings.shape[0], bias=False)
        with torch.no_grad():
            self.head.weight.copy_(logit_scale * class_embeddings)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.normalize(self.visual(x), dim=-1))


def zero_shot_classifier(loaded: object, classnames: Sequence[str], templates: Sequence[object],
                         logit_scale: float = 100.0, device: str | torch.device = "cpu") -> ZeroShotClassifier:
    """A :class:`ZeroShotClassifier` from a ``LoadedModel`` (its image tower is deep-copied, never shared), in
    float32 on ``device``: fine-tuning, accuracy, barriers and sharpness then run where it lives, the task's
    tensors staying on the CPU and moving there one batch at a time."""
    from cliplab.eval import class_weights

    weights = class_weights(loaded, list(classnames), templates)  # type: ignore[arg-type]  # (D, C)
    visual = copy.deepcopy(loaded.model.visual).float().to(device)  # type: ignore[attr-defined]
    model = ZeroShotClassifier(visual, weights.T.contiguous().to(device), logit_scale)
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------------ data


def labeled_to_tensors(loaded: object, data: object) -> tuple[Tensor, Tensor]:
    """Model input tensors (N, 3, H, W) and labels of a ``LabeledImages`` (uint8 arrays or image paths)."""
    from cliplab.eval.data import LabeledImages
    from cliplab.models.preprocess import images_to_tensor

    if not isinstance(data, LabeledImages):
        raise TypeError(f"expected LabeledImages, got {type(data).__name__}")
    images = data.images
    x = images_to_tensor(images, loaded.model, loaded.preprocess)  # type: ignore[attr-defined]
    return x.float(), torch.as_tensor(np.asarray(data.labels), dtype=torch.long)


def world_labeled(world: object, concepts: Sequence[int], per_class: int, split: str, domain: str = "clean",
                  colours: str = "natural") -> object:
    """Balanced single-object ``LabeledImages`` of ``concepts`` (class i = concepts[i]) from a world."""
    from cliplab.eval.data import LabeledImages

    samples = world.eval_set(per_class, domain=domain, concepts=list(concepts), split=split,  # type: ignore[attr-defined]
                             colours=colours)
    position = {int(c): i for i, c in enumerate(concepts)}
    return LabeledImages(images=np.stack([s.image for s in samples]),
                         labels=np.array([position[int(s.meta["objects"][0]["concept"])] for s in samples]),
                         classnames=[world.concept(int(c)).name for c in concepts],  # type: ignore[attr-defined]
                         class_ids=[int(c) for c in concepts])


WORLD_SHIFTS: tuple[tuple[str, str, str], ...] = (
    ("uniform_colour", "clean", "uniform"), ("noisy", "noisy", "natural"),
    ("textured", "textured", "natural"), ("sketch", "sketch", "natural"),
)
"""OOD shifts of the world task: (name, domain, colours). 'uniform_colour' breaks the concept–colour
correlation the fine-tuning data carries (strong concepts are mostly their canonical colour)."""


def world_task(loaded: object, world: object, concepts: Sequence[int], n_train_per_class: int,
               n_test_per_class: int, n_ood_per_class: int) -> TaskData:
    """Downstream task on a world: ID = clean natural-colour images (train: split 'val', test: 'test')."""
    if len(concepts) < 2:
        raise ValueError(f"a classification task needs ≥ 2 concepts, got {len(concepts)}")
    train = world_labeled(world, concepts, n_train_per_class, "val")
    test = world_labeled(world, concepts, n_test_per_class, "test")
    ood = {name: labeled_to_tensors(loaded, world_labeled(world, concepts, n_ood_per_class, "test", dom, col))
           for name, dom, col in WORLD_SHIFTS}
    x_train, y_train = labeled_to_tensors(loaded, train)
    x_test, y_test = labeled_to_tensors(loaded, test)
    return TaskData(x_train, y_train, x_test, y_test, ood, list(train.classnames))  # type: ignore[attr-defined]


def _split_every_other(data: object) -> tuple[object, object]:
    """Each class's images in file order: even positions to fine-tune on, odd ones to test on (disjoint)."""
    from cliplab.eval.data import LabeledImages

    labels = np.asarray(data.labels)  # type: ignore[attr-defined]
    position = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        position[members] = np.arange(len(members))
    parts = []
    for keep in (position % 2 == 0, position % 2 == 1):
        index = np.flatnonzero(keep)
        parts.append(LabeledImages([data.images[i] for i in index], labels[index],  # type: ignore[attr-defined]
                                   list(data.classnames), data.class_ids))  # type: ignore[attr-defined]
    return parts[0], parts[1]


def folder_task(loaded: object, train_dir: str, test_dir: str, ood_dirs: Sequence[str]) -> TaskData:
    """Downstream task from image folders ``<class>/*.png``; every folder must have the same classes.

    An empty ``test_dir`` splits ``train_dir`` per class (every other image held out). OOD sets are named by
    their folder's base name.
    """
    from pathlib import Path

    from cliplab.eval.data import read_image_folder

    if not ood_dirs:
        raise ValueError("ood_dirs is empty: give at least one shifted test folder")
    if test_dir:
        train, test = read_image_folder(train_dir), read_image_folder(test_dir)
    else:
        train, test = _split_every_other(read_image_folder(train_dir))
    oods = {Path(d).name: read_image_folder(d) for d in ood_dirs}
    for name, other in [("test", test), *oods.items()]:
        if other.classnames != train.classnames:
            raise ValueError(f"{name} folder has classes {other.classnames}, the train folder "
                             f"{train.classnames}; every folder needs the same class sub-folders")
    x_train, y_train = labeled_to_tensors(loaded, train)
    x_test, y_test = labeled_to_tensors(loaded, test)
    ood = {name: labeled_to_tensors(loaded, d) for name, d in oods.items()}
    return TaskData(x_train, y_train, x_test, y_test, ood, list(train.classnames))


# ------------------------------------------------------------------------------------------------ fine-tuning


def _freeze_norm_stats(model: nn.Module) -> None:
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.eval()


def finetune(model: ZeroShotClassifier, x: Tensor, y: Tensor, steps: int, batch_size: int = 64,
             lr: float = 3e-4, weight_decay: float = 0.1, seed: int = 0) -> ZeroShotClassifier:
    """A fine-tuned copy of ``model``: AdamW on cross-entropy, every parameter, BatchNorm statistics frozen."""
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need steps ≥ 1, batch_size ≥ 1 and lr > 0, got {steps}, {batch_size}, {lr}")
    ft = copy.deepcopy(model)
    device = model_device(ft)
    opt = torch.optim.AdamW(ft.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    ft.train()
    _freeze_norm_stats(ft)
    perm, pos = torch.randperm(len(y), generator=gen), 0
    for _ in range(steps):
        if pos + batch_size > len(y):
            perm, pos = torch.randperm(len(y), generator=gen), 0
        idx = perm[pos:pos + batch_size]
        pos += batch_size
        loss = F.cross_entropy(ft(x[idx].to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ft.eval()


# ------------------------------------------------------------------------------------------------ weight space


def _check_keys(a: State, b: State) -> None:
    if a.keys() != b.keys():
        raise ValueError(f"state dicts differ in keys: only in first {sorted(a.keys() - b.keys())[:5]}, only in "
                         f"second {sorted(b.keys() - a.keys())[:5]}")
    for k in a:
        if a[k].shape != b[k].shape:
            raise ValueError(f"{k}: shapes differ ({tuple(a[k].shape)} vs {tuple(b[k].shape)})")


def interpolate_state(zs: State, ft: State, alpha: float) -> State:
    """WiSE-FT: (1−α)·θ_zs + α·θ_ft for every floating-point entry; α = 0 / 1 give the endpoints exactly.

    Non-float entries (e.g. BatchNorm's num_batches_tracked) must be equal in both and are copied.
    """
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    _check_keys(zs, ft)
    out = {}
    for k, a in zs.items():
        b = ft[k]
        if not a.is_floating_point():
            if not torch.equal(a, b):
                raise ValueError(f"non-float entry {k} differs between the endpoints; cannot interpolate it")
            out[k] = a.clone()
        elif alpha == 0:
            out[k] = a.clone()
        elif alpha == 1:
            out[k] = b.clone()
        else:
            out[k] = (1.0 - alpha) * a + alpha * b
    return out


def task_vector(zs: State, ft: State) -> State:
    """τ = θ_ft − θ_zs for every floating-point entry."""
    _check_keys(zs, ft)
    return {k: ft[k] - zs[k] for k in zs if zs[k].is_floating_point()}


def apply_task_vector(zs: State, tau: State, alpha: float) -> State:
    """θ_zs + α·τ (entries absent from τ are copied from θ_zs); α = 0 gives θ_zs exactly."""
    unknown = sorted(set(tau) - set(zs))
    if unknown:
        raise ValueError(f"task vector has keys the state lacks: {unknown[:5]}")
    return {k: (v + alpha * tau[k] if k in tau and alpha != 0 else v.clone()) for k, v in zs.items()}


def sparsify_task_vector(tau: State, keys: Iterable[str], keep: float) -> State:
    """Keep the ``keep`` fraction of largest-|τ| entries of every tensor named in ``keys``; others untouched.

    Per tensor, exactly ``ceil(keep · numel)`` entries survive (ties at the threshold broken by position).
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    keys = set(keys)
    unknown = sorted(keys - set(tau))
    if unknown:
        raise ValueError(f"keys not in the task vector: {unknown[:5]}")
    out = dict(tau)
    for k in keys:
        flat = tau[k].flatten()
        n_keep = math.ceil(keep * flat.numel())
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask[torch.topk(flat.abs(), n_keep, sorted=False).indices] = True
        out[k] = torch.where(mask, flat, torch.zeros_like(flat)).view_as(tau[k])
    return out


# ------------------------------------------------------------------------------------------------ layers


class _Members:
    """Parameter filter: True for the parameter names of one group (a picklable predicate)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def __call__(self, name: str, param: Tensor) -> bool:
        return name in self.names

    def __repr__(self) -> str:
        return f"_Members({sorted(self.names)[:3]}…)"


def group_of(name: str) -> str:
    """Layer group of a parameter name: the stem, a block (up to the first numeric index) or 2 components."""
    if STEM.match(name):
        return "visual.stem"
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def layer_groups(model: nn.Module) -> dict[str, _Members]:
    """Group → parameter filter for every parameter of ``model``, in first-appearance order."""
    members: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        members.setdefault(group_of(name), []).append(name)
    return {g: _Members(names) for g, names in members.items()}


def drift(zs: State, ft: State, groups: dict[str, _Members]) -> pd.DataFrame:
    """Per group: r = ‖θ_ft − θ_zs‖ / ‖θ_zs‖ over its parameters (card definition (b)); columns group, drift,
    update_norm, weight_norm, n_params."""
    rows = []
    for g, filt in groups.items():
        names = [n for n in filt.names if n in zs]
        if not names:
            raise ValueError(f"group {g!r} has no entry in the state dict")
        upd = math.sqrt(sum(float(((ft[n] - zs[n]).double() ** 2).sum()) for n in names))
        ref = math.sqrt(sum(float((zs[n].double() ** 2).sum()) for n in names))
        rows.append({"group": g, "drift": upd / ref if ref > 0 else math.inf, "update_norm": upd,
                     "weight_norm": ref, "n_params": sum(zs[n].numel() for n in names)})
    return pd.DataFrame(rows)


def stragglers(drift_table: pd.DataFrame, k: int) -> list[str]:
    """The ``k`` groups with the largest drift (ties broken by group name)."""
    if not 1 <= k <= len(drift_table):
        raise ValueError(f"k must be in 1..{len(drift_table)} (number of groups), got {k}")
    ordered = drift_table.assign(_neg=-drift_table["drift"]).sort_values(["_neg", "group"])
    return list(ordered["group"].iloc[:k])


def _loss(model: nn.Module, state: State, x: Tensor, y: Tensor) -> float:
    model.load_state_dict(state)
    model.eval()
    device = model_device(model)
    with torch.no_grad():
        return float(F.cross_entropy(model(x.to(device)), y.to(device)))


def layer_barriers(model: nn.Module, zs: State, ft: State, groups: dict[str, _Members], x: Tensor, y: Tensor,
                   alphas: Sequence[float] = ALPHAS) -> pd.DataFrame:
    """Card definition (a): B_l = max_α [L(p_l(α)) − ((1−α)L(p_l(0)) + αL(p_l(1)))], p_l(α) = θ_ft with group
    l alone interpolated from θ_zs. ``model`` is used as a scratch container (its weights are overwritten)."""
    rows = []
    for g, filt in groups.items():
        losses = []
        for a in alphas:
            mixed = interpolate_state(zs, ft, a)
            state = {k: (mixed[k] if k in filt.names else ft[k]) for k in ft}
            losses.append(_loss(model, state, x, y))
        a_arr, l_arr = np.asarray(alphas, float), np.asarray(losses)
        lo, hi = l_arr[np.argmin(a_arr)], l_arr[np.argmax(a_arr)]
        chord = lo + (a_arr - a_arr.min()) / max(a_arr.max() - a_arr.min(), 1e-12) * (hi - lo)
        rows.append({"group": g, "barrier": float(np.max(l_arr - chord))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ the path


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in eval mode without gradients."""
    model.eval()
    hits, device = 0, model_device(model)
    with torch.no_grad():
        for s in range(0, len(y), batch_size):
            hits += int((model(x[s:s + batch_size].to(device)).argmax(-1).cpu() == y[s:s + batch_size]).sum())
    return hits / len(y)


def path_accuracy(model: nn.Module, states: Sequence[tuple[float, State]], data: TaskData) -> pd.DataFrame:
    """ID and per-shift OOD accuracy at every (α, state); ``ood_acc`` is the mean over shifts."""
    rows = []
    for a, state in states:
        model.load_state_dict(state)
        row = {"alpha": float(a), "id_acc": accuracy(model, data.x_test, data.y_test)}
        for name, (x, y) in data.ood.items():
            row[f"ood_acc_{name}"] = accuracy(model, x, y)
        row["ood_acc"] = float(np.mean([row[f"ood_acc_{n}"] for n in data.ood]))
        rows.append(row)
    return pd.DataFrame(rows)


def path_sharpness(model: nn.Module, states: Sequence[tuple[float, State]], x: Tensor, y: Tensor,
                   layer_config: SharpnessConfig, groups: dict[str, _Members],
                   full_configs: dict[str, SharpnessConfig], seed: int = 0) -> pd.DataFrame:
    """Long table (alpha, group, definition, loss_sharpness): layer-wise for every group under
    ``layer_config`` and whole-model (group ``"all"``) under every config of ``full_configs``."""
    rows = []
    for a, state in states:
        model.load_state_dict(state)
        for label, cfg in full_configs.items():
            with warnings.catch_warnings():  # vmap has no batching rule for CPU attention: a (correct) loop
                warnings.filterwarnings("ignore", message="There is a performance drop")
                res = sharpness(model, (x, y), cfg, seed=seed)
            rows.append({"alpha": float(a), "group": "all", "definition": label,
                         "loss_sharpness": res.loss_sharpness})
        lw = layerwise_sharpness(model, (x, y), layer_config, groups, seed=seed)  # type: ignore[arg-type]
        for _, r in lw.iterrows():
            rows.append({"alpha": float(a), "group": r["group"], "definition": layer_config.label,
                         "loss_sharpness": float(r["loss_sharpness"])})
    return pd.DataFrame(rows)


def tau_over_path(values: Sequence[float], ood_acc: Sequence[float]) -> float:
    """Kendall τ over the α grid between a sharpness curve and OOD accuracy (0.0 if either is constant).

    A constant curve has no rank correlation, but it is no evidence either: a claim that reads |τ| < bound as
    "does not predict" must also require ``PathResult.flat`` to be false (see ``n_flat``).
    """
    v, o = np.asarray(values, float), np.asarray(ood_acc, float)
    if np.ptp(v) == 0 or np.ptp(o) == 0:
        return 0.0
    return kendall_tau(v, o)


def mixed_subset(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` points of one seeded shuffle of (x, y): a class-mixed subset of class-grouped data."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    return x[order], y[order]


def interior_gain(curve: pd.DataFrame, column: str = "ood_acc") -> float:
    """max over interior α of the curve minus the better endpoint (> 0: interpolation beats both ends)."""
    c = curve.sort_values("alpha")
    ends = max(float(c[column].iloc[0]), float(c[column].iloc[-1]))
    interior = c[column].iloc[1:-1]
    # accuracies averaged over shifts carry float rounding (~1e-17): that is not a gain, so round it away
    return round(float(interior.max() - ends), 12) if len(interior) else 0.0


def gain_over_endpoints(curve: pd.DataFrame, reference: pd.DataFrame, column: str = "ood_acc") -> float:
    """max over every α of ``curve`` minus the better endpoint of ``reference`` (the dense path's θ_zs, θ_ft).

    A sparsified path's own α = 1 end is not θ_ft, so its interior gain over its own ends can be positive
    while it never reaches the fine-tuned model's OOD accuracy; this compares it with the original endpoints.
    """
    r = reference.sort_values("alpha")
    ends = max(float(r[column].iloc[0]), float(r[column].iloc[-1]))
    return round(float(curve[column].max() - ends), 12)


@dataclass
class PathResult:
    """One fine-tuning seed's path: accuracies, sharpness, drift/barriers, stragglers, sparsified curves."""

    seed: int
    accuracy: pd.DataFrame
    sharpness: pd.DataFrame
    drift: pd.DataFrame
    barriers: pd.DataFrame
    stragglers: list[str]
    sparse: pd.DataFrame
    taus: dict[str, float]

    def flat(self, definition: str) -> bool:
        """Whether the whole-model sharpness curve of ``definition`` or the OOD accuracy curve is constant in α
        (its τ is then 0.0 by convention, not a measured lack of correlation)."""
        s = self.sharpness
        curve = s[(s.group == "all") & (s.definition == definition)].loss_sharpness.to_numpy(float)
        return bool(np.ptp(curve) == 0 or np.ptp(self.accuracy.ood_acc.to_numpy(float)) == 0)


def n_flat(paths: Sequence[PathResult], definition: str) -> int:
    """How many paths have a constant whole-model sharpness or OOD curve for ``definition``."""
    return sum(p.flat(definition) for p in paths)


def run_path(base: ZeroShotClassifier, data: TaskData, seed: int, *, steps: int, batch_size: int, lr: float,
             weight_decay: float, alphas: Sequence[float], layer_config: SharpnessConfig,
             full_configs: dict[str, SharpnessConfig], n_stragglers: int, keep_fractions: Sequence[float],
             sharpness_seed: int = 0, single_thread: bool = True) -> PathResult:
    """Fine-tune ``base`` with ``seed`` and evaluate the whole WiSE-FT path (see the module docstring).

    taus: ``full.<definition>`` (whole-model), ``layer.<group>`` (each group) — Kendall τ over α with mean OOD
    accuracy — and ``straggler_abs``, the mean |τ| of the straggler groups.
    Sharpness and barriers use ``layer_config.n_examples`` training points from ``mixed_subset``.
    ``single_thread`` suits a zoo CLIP (many small ops: one thread is the fast path on a shared CPU); a real
    architecture at 224 px is big GEMMs and attention, which every thread speeds up (one ViT-B-32 smoke path:
    395 s on one thread, 234 s on two, on a 2-core AMD EPYC family 25 model 17).
    """
    with single_threaded() if single_thread else contextlib.nullcontext():
        ft_model = finetune(base, data.x_train, data.y_train, steps, batch_size, lr, weight_decay, seed)
        zs, ft = base.state_dict(), ft_model.state_dict()
        work = copy.deepcopy(base)
        groups = layer_groups(work)
        states = [(a, interpolate_state(zs, ft, a)) for a in alphas]
        acc = path_accuracy(work, states, data)
        xs, ys = mixed_subset(data.x_train, data.y_train, layer_config.n_examples, sharpness_seed)
        sharp = path_sharpness(work, states, xs, ys, layer_config, groups, full_configs, sharpness_seed)
        dr = drift(zs, ft, groups)
        strag = stragglers(dr, n_stragglers)
        bar = layer_barriers(work, zs, ft, groups, xs, ys, alphas)
        tau_vec = task_vector(zs, ft)
        strag_keys = [k for g in strag for k in groups[g].names]
        sparse_rows = []
        for keep in keep_fractions:
            sparse_tv = sparsify_task_vector(tau_vec, strag_keys, keep)
            curve = path_accuracy(work, [(a, apply_task_vector(zs, sparse_tv, a)) for a in alphas], data)
            sparse_rows.append(curve.assign(keep=float(keep)))
        sparse = pd.concat(sparse_rows, ignore_index=True) if sparse_rows else pd.DataFrame()
        ood = acc.set_index("alpha")["ood_acc"]
        taus = {}
        for label in full_configs:
            s = sharp[(sharp.group == "all") & (sharp.definition == label)].set_index("alpha")["loss_sharpness"]
            taus[f"full.{label}"] = tau_over_path(s.loc[ood.index].to_numpy(), ood.to_numpy())
        layer = sharp[sharp.group != "all"].pivot(index="alpha", columns="group", values="loss_sharpness")
        for g in groups:
            taus[f"layer.{g}"] = tau_over_path(layer.loc[ood.index, g].to_numpy(), ood.to_numpy())
        taus["straggler_abs"] = float(np.mean([abs(taus[f"layer.{g}"]) for g in strag]))
    return PathResult(seed, acc, sharp, dr, bar, strag, sparse, taus)


__all__ = [
    "ALPHAS", "PathResult", "WORLD_SHIFTS", "ZeroShotClassifier", "accuracy", "apply_task_vector", "drift",
    "finetune", "folder_task", "gain_over_endpoints", "group_of", "interior_gain", "interpolate_state",
    "labeled_to_tensors", "layer_barriers", "layer_groups", "mixed_subset", "n_flat", "path_accuracy",
    "path_sharpness", "run_path", "sparsify_task_vector", "stragglers", "task_vector", "tau_over_path", "world_labeled",
    "world_task", "zero_shot_classifier",
]
