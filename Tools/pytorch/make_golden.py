"""Writes the golden fixtures that rrmd's Swift tests reproduce (CI never runs Python).

Usage, from the repository root:

    /work/torchvenv/bin/python Tools/pytorch/make_golden.py            # all fixtures
    /work/torchvenv/bin/python Tools/pytorch/make_golden.py --out DIR  # somewhere else
    /work/torchvenv/bin/python Tools/pytorch/make_golden.py --only resnet20 losses

Default output directory: Tests/ModelsTests/Fixtures (relative to the repository root, found from
this file's location). Output is deterministic: every case reseeds torch with its own fixed seed
and the script runs single-threaded. Tools/pytorch/README.md lists every tensor in every file.

Precision: parameters, inputs and given gradients are drawn in float32; all forward/backward/SGD
arithmetic for the model, loss and schedule goldens is then done in float64 starting from those
exact float32 values, and results are rounded to float32 only when stored. The goldens are thus the
exact answers for the stored inputs, not PyTorch's float32 rounding of them; a correct float32
implementation should land within its own rounding error of them. (optim.safetensors is the
exception: the toy SGD runs in float32, like the optimiser under test.)
"""
import argparse
import contextlib
import copy
import json
import math
import struct
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

import rrmd_models

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
NUM_BATCHES_TRACKED = 7
PERTURBATION = 1e-6  # relative; the order of the accumulated float32 error of these networks

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
# mobilenetv2's second step is chaotic in float32 (README: "Conditioning"), so it is not stored.
STEPS = {"mobilenetv2": 1, "resnet50": 1, "wideresnet-28-10": 1}  # the last two: one step keeps the files small
SEEDS = {"resnet20": 64, "vgg11": 14, "cnn-small": 10, "mlp": 20, "resnet18": 20, "mobilenetv2": 5,
         "preactresnet18": 0, "resnet50": 0, "wideresnet-28-10": 0, "wideresnet-16-2": 0, "resnet20-28": 6}

# name, seed, arch, in_channels, height, width, batch, num_classes, width_mult, mean, std
# cnn-small and vgg11 run narrower than their production width to keep each file near 1-2 MB
# (README: "Size budget"). Seeds were picked with --scan-seeds (30 seeds; 100 for resnet20) as the
# ones whose float64 passes keep every ReLU input and max-pool decision farthest from its kink and
# whose outputs are least sensitive to float32-sized perturbations (README: "Conditioning").
MODEL_CASES = [
    ("resnet20", SEEDS["resnet20"], "resnet20", 3, 32, 32, 4, 10, 1.0, CIFAR_MEAN, CIFAR_STD),
    ("vgg11", SEEDS["vgg11"], "vgg11", 3, 32, 32, 4, 10, 0.125, None, None),
    ("cnn-small", SEEDS["cnn-small"], "cnn-small", 1, 28, 28, 4, 10, 0.3, FASHION_MEAN, FASHION_STD),
    ("mlp", SEEDS["mlp"], "mlp", 1, 8, 8, 5, 10, 0.5, None, None),
    ("resnet18", SEEDS["resnet18"], "resnet18", 3, 32, 32, 2, 10, 0.125, None, None),
    ("mobilenetv2", SEEDS["mobilenetv2"], "mobilenetv2", 3, 32, 32, 2, 10, 0.25, None, None),
    # The public robust model zoo's architectures (issue 17), narrowed to keep the files small.
    ("preactresnet18", SEEDS["preactresnet18"], "preactresnet18", 3, 32, 32, 2, 10, 0.125, CIFAR_MEAN, CIFAR_STD),
    ("resnet50", SEEDS["resnet50"], "resnet50", 3, 32, 32, 2, 10, 0.125, CIFAR_MEAN, CIFAR_STD),
    ("wideresnet-28-10", SEEDS["wideresnet-28-10"], "wideresnet-28-10", 3, 32, 32, 2, 10, 0.1, CIFAR_MEAN, CIFAR_STD),
    ("wideresnet-16-2", SEEDS["wideresnet-16-2"], "wideresnet-16-2", 3, 32, 32, 2, 10, 0.5, CIFAR_MEAN, CIFAR_STD),
    # MNIST-sized: 28, 14 and 7 wide stages, whose Winograd grids run past the image (ghost tiles).
    ("resnet20-28", SEEDS["resnet20-28"], "resnet20", 1, 28, 28, 2, 10, 0.5, FASHION_MEAN, FASHION_STD),
]

# Students with a projection head (design.md section 1, "Width mismatch"): the same goldens as
# MODEL_CASES, one more field: the projection width P. cnn-small narrows its 64 features to 24,
# resnet20 widens its 32 to 48. Tiny 8x8 inputs keep the files small; seeds by --scan-seeds 30.
PROJECTION_SEEDS = {"cnn-small-projection": 13, "resnet20-projection": 28}
PROJECTION_CASES = [
    ("cnn-small-projection", PROJECTION_SEEDS["cnn-small-projection"], "cnn-small", 1, 8, 8, 4, 10, 0.5,
     FASHION_MEAN, FASHION_STD, 24),
    ("resnet20-projection", PROJECTION_SEEDS["resnet20-projection"], "resnet20", 3, 8, 8, 4, 10, 0.5,
     CIFAR_MEAN, CIFAR_STD, 48),
]

# One RRM step (rrm-step.safetensors): a frozen teacher in eval mode and a student of another
# architecture whose projection maps its features to the teacher's width.
RRM_SEED = 21  # --scan-seeds 30: the largest kink margin
RRM_TEACHER = ("resnet20", 0.5)            # arch, width_mult: representation width 32
RRM_STUDENT = ("cnn-small", 0.5, 32)       # arch, width_mult, projection: 64 features -> 32
RRM_INPUT = (8, 3, 8, 8, 10)               # N, C, H, W, classes
RRM_WEIGHTS = {"cos": 0.005, "l2": 0.001}  # cross-entropy weight of each feature loss (paper values)


def f32(t):
    """Detached, contiguous float32 copy (integer tensors are kept as they are)."""
    t = t.detach()
    return (t.float() if t.is_floating_point() else t).contiguous().clone()


def state_tensors(prefix, model):
    return {f"{prefix}.{k}": f32(v) for k, v in model.state_dict().items()}


def randomize_batchnorm(model):
    """Non-trivial BN parameters and statistics, so inference mode is really tested."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(NUM_BATCHES_TRACKED)


def csv(values):
    return ",".join(repr(float(v)) for v in values)


def initial_case(seed, arch, c, h, w, n, k, width_mult, mean, std, projection=None):
    """The float32 starting point of a model case: model (BN randomised), input, labels."""
    torch.manual_seed(seed)
    model = rrmd_models.build(arch, c, h, w, k, width_mult, mean, std, projection=projection)
    randomize_batchnorm(model)
    x = torch.rand(n, c, h, w)
    y = torch.randint(0, k, (n,))
    return model, x, y


@contextlib.contextmanager
def kink_recorder(log):
    """While active, every F.relu / F.max_pool2d call (nn.ReLU and nn.MaxPool2d go through them)
    appends its margin to `log`: min |z| / rms(z) over a ReLU's input, or the smallest gap between
    the largest and second-largest value of a 2x2 pooling window (windows of zeros excepted), over
    rms. A float32 implementation
    whose error at some point exceeds the margin there takes the other branch of the kink."""
    relu, max_pool2d = F.relu, F.max_pool2d

    def rms(z):
        return z.pow(2).mean().sqrt().clamp_min(1e-30)

    def recording_relu(input, inplace=False):
        z = input.detach()
        log.append((z.abs().min() / rms(z)).item())
        return relu(input, inplace=inplace)

    def recording_max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                             return_indices=False):
        z = input.detach()
        assert kernel_size in (2, (2, 2)) and stride in (None, 2, (2, 2)) and padding in (0, (0, 0))
        n, c, h, w = z.shape
        win = z[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
        top2 = win.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4).topk(2, dim=-1).values
        # A window of zeros (all its ReLUs off) is a harmless tie: whichever element wins, the
        # ReLU below passes no gradient to it.
        gap = torch.where(top2[..., 0] > 0, top2[..., 0] - top2[..., 1], torch.full_like(top2[..., 0], math.inf))
        log.append((gap.min() / rms(z)).item())
        return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode,
                          return_indices=return_indices)

    F.relu, F.max_pool2d = recording_relu, recording_max_pool2d
    try:
        yield
    finally:
        F.relu, F.max_pool2d = relu, max_pool2d


def run_goldens(model, x, y, perturb=None, kinks=None, steps=2):
    """Eval pass, `steps` (1 or 2) train steps; float64 arithmetic. `perturb` (a generator) multiplies the input
    and every parameter by (1 + PERTURBATION * U(-1, 1)) first (for the sensitivity check only).
    `kinks` (a dict) receives the smallest kink margin of each forward pass: eval, train, train2."""
    def forward(tag, inp):
        log = []
        with kink_recorder(log) if kinks is not None else contextlib.nullcontext():
            result = model(inp, return_representation=True)
        if kinks is not None:
            kinks[tag] = min(log) if log else float("inf")
        return result

    model = copy.deepcopy(model).double()  # exact copy of the float32 values
    xd = x.double()
    if perturb is not None:
        xd = xd * (1 + PERTURBATION * (2 * torch.rand(xd.shape, generator=perturb, dtype=torch.float64) - 1))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + PERTURBATION * (2 * torch.rand(p.shape, generator=perturb, dtype=torch.float64) - 1))
    out = {}

    model.eval()
    xe = xd.clone().requires_grad_(True)
    logits, rep = forward("eval", xe)
    loss = F.cross_entropy(logits, y)
    (gx,) = torch.autograd.grad(loss, xe)
    out.update({"eval.logits": f32(logits), "eval.representation": f32(rep), "eval.loss": f32(loss),
                "eval.input_grad": f32(gx)})

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        tag = "train" if step == 1 else "train2"
        xt = xd.clone().requires_grad_(True)
        logits, rep = forward(tag, xt)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        out.update({f"{tag}.logits": f32(logits), f"{tag}.loss": f32(loss)})
        if step == 1:
            out.update({"train.representation": f32(rep), "train.input_grad": f32(xt.grad)})
        opt.step()
        out.update(state_tensors(f"step{step}", model))
    return out


GROUPS = {"eval": "eval", "train": "train", "step1": "step1", "train2": "step2", "step2": "step2"}


def group_of(key):
    """Output group of a stored tensor: eval.*, train.* (forward), step1.* (+ train.input_grad,
    which comes from the same backward), step2.* (+ train2.*)."""
    return "step1" if key == "train.input_grad" else GROUPS[key.split(".")[0]]


def sensitivity(model, x, y, golden, draws=2, steps=2):
    """Per output group, the largest change of a stored float tensor (relative to that tensor's
    largest magnitude) when input and parameters are perturbed by PERTURBATION relative. A smooth
    answer moves by about PERTURBATION times the network's amplification; a ReLU or max-pool
    decision flipping near its kink makes it jump (weight gradients by ~1/sqrt(N*H*W))."""
    worst = {}
    for d in range(draws):
        other = run_goldens(model, x, y, perturb=torch.Generator().manual_seed(1000 + d), steps=steps)
        for key, ref in golden.items():
            if ref.is_floating_point():
                change = ((other[key] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
                group = group_of(key)
                worst[group] = max(worst.get(group, 0.0), change)
    return worst


def model_case(name, seed, arch, c, h, w, n, k, width_mult, mean, std, projection=None, check=True):
    model, x, y = initial_case(seed, arch, c, h, w, n, k, width_mult, mean, std, projection)
    out = {"input": f32(x), "labels": y.clone()}
    out.update(state_tensors("state", model))
    kinks = {}
    steps = STEPS.get(name, 2)
    golden = run_goldens(model, x, y, kinks=kinks, steps=steps)
    out.update(golden)

    c_mean = rrmd_models.per_channel(mean, 0.0, c)
    c_std = rrmd_models.per_channel(std, 1.0, c)
    meta = {"arch": arch, "width_mult": repr(width_mult), "in_channels": str(c), "height": str(h),
            "width": str(w), "num_classes": str(k), "batch": str(n), "lr": repr(LR),
            "momentum": repr(MOMENTUM), "weight_decay": repr(WEIGHT_DECAY), "mean": csv(c_mean),
            "std": csv(c_std), "torch": torch.__version__, "seed": str(seed),
            "compute_dtype": "float64", "bn_momentum": "0.1", "bn_eps": "1e-05", "steps": str(steps)}
    if projection is not None:  # absent for the cases without one, which stay byte-identical
        meta["projection"] = str(projection)
    for tag, margin in kinks.items():
        meta[f"kink_margin.{tag}"] = f"{margin:.2e}"
    if check:
        meta["sensitivity.perturbation"] = f"{PERTURBATION:.0e}"
        for group, change in sensitivity(model, x, y, golden, steps=steps).items():
            meta[f"sensitivity.{group}"] = f"{change:.2e}"
    return out, meta


def scan_seeds(cases, count):
    """Ranks seeds 0..count-1 of each case by smallest kink margin; prints the best five with their
    perturbation sensitivity."""
    for case in cases:
        rows = []
        for seed in range(count):
            model, x, y = initial_case(seed, *case[2:])
            kinks = {}
            run_goldens(model, x, y, kinks=kinks, steps=STEPS.get(case[0], 2))
            rows.append((min(kinks.values()), seed, kinks))
        rows.sort(reverse=True)
        for margin, seed, kinks in rows[:5]:
            model, x, y = initial_case(seed, *case[2:])
            steps = STEPS.get(case[0], 2)
            sens = sensitivity(model, x, y, run_goldens(model, x, y, steps=steps), steps=steps)
            print(f"{case[0]:12s} seed {seed:3d} min margin {margin:.2e} ("
                  + " ".join(f"{t} {m:.1e}" for t, m in kinks.items()) + ") sensitivity "
                  + " ".join(f"{g} {v:.1e}" for g, v in sens.items()), flush=True)


def losses_case(seed):
    torch.manual_seed(seed)
    a = torch.randn(6, 9)
    b = torch.randn(6, 9)
    logits = torch.randn(6, 5)
    labels = torch.randint(0, 5, (6,))
    out = {"a": a, "b": b, "logits": logits, "labels": labels.clone()}

    def leaf(t):
        return t.double().requires_grad_(True)

    lg = leaf(logits)
    ce = F.cross_entropy(lg, labels)
    (g,) = torch.autograd.grad(ce, lg)
    out.update({"ce.loss": f32(ce), "ce.grad": f32(g)})

    ad, bd = leaf(a), leaf(b)
    cos = (1 - F.cosine_similarity(ad, bd, dim=1)).mean()
    ga, gb = torch.autograd.grad(cos, (ad, bd))
    out.update({"cos.loss": f32(cos), "cos.grad_a": f32(ga), "cos.grad_b": f32(gb)})

    ad, bd = leaf(a), leaf(b)
    rel = ((ad - bd).norm(dim=1) / bd.norm(dim=1)).mean()
    ga, gb = torch.autograd.grad(rel, (ad, bd))
    out.update({"rel_l2.loss": f32(rel), "rel_l2.grad_a": f32(ga), "rel_l2.grad_b": f32(gb)})

    lg, ad, bd = leaf(logits), leaf(a), b.double()  # the teacher's features are constants
    rrm = 0.005 * F.cross_entropy(lg, labels) + (1 - F.cosine_similarity(ad, bd, dim=1)).mean()
    gl, ga = torch.autograd.grad(rrm, (lg, ad))
    out.update({"rrm.loss": f32(rrm), "rrm.grad_logits": f32(gl), "rrm.grad_a": f32(ga)})

    meta = {"rrm_lambda": "0.005", "torch": torch.__version__, "seed": str(seed), "compute_dtype": "float64"}
    return out, meta


def rrm_initial(seed):
    """The float32 starting point of the RRM step: teacher, student (BN randomised), input, labels."""
    torch.manual_seed(seed)
    n, c, h, w, k = RRM_INPUT
    teacher = rrmd_models.build(RRM_TEACHER[0], c, h, w, k, RRM_TEACHER[1], CIFAR_MEAN, CIFAR_STD)
    randomize_batchnorm(teacher)
    student = rrmd_models.build(RRM_STUDENT[0], c, h, w, k, RRM_STUDENT[1], CIFAR_MEAN, CIFAR_STD,
                                projection=RRM_STUDENT[2])
    randomize_batchnorm(student)
    x = torch.rand(n, c, h, w)
    y = torch.randint(0, k, (n,))
    return teacher, student, x, y


def rrm_goldens(teacher, student, x, y, perturb=None, kinks=None):
    """Both RRM objectives on one batch, float64: the teacher in eval mode under no_grad (a
    constant target), the student in train mode (batch statistics), gradients for every student
    parameter. Each objective starts from its own copy of the student. `perturb` and `kinks` as in
    run_goldens."""
    teacher = copy.deepcopy(teacher).double().eval()
    xd = x.double()
    if perturb is not None:
        xd = xd * (1 + PERTURBATION * (2 * torch.rand(xd.shape, generator=perturb, dtype=torch.float64) - 1))

    def perturbed(model):
        if perturb is not None:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1 + PERTURBATION * (2 * torch.rand(p.shape, generator=perturb, dtype=torch.float64) - 1))
        return model

    def forward(tag, model, inp):
        log = []
        with kink_recorder(log) if kinks is not None else contextlib.nullcontext():
            result = model(inp, return_representation=True)
        if kinks is not None:
            kinks[tag] = min(log) if log else float("inf")
        return result

    perturbed(teacher)
    with torch.no_grad():
        _, zt = forward("teacher", teacher, xd)
    out = {"outputs.teacher_representation": f32(zt)}
    features = {
        "cos": lambda zs: (1 - F.cosine_similarity(zs, zt, dim=1)).mean(),
        "l2": lambda zs: ((zs - zt).norm(dim=1) / zt.norm(dim=1)).mean(),
    }
    for tag, feature_loss in features.items():
        model = perturbed(copy.deepcopy(student).double().train())
        logits, zs = forward("student", model, xd)
        ce = F.cross_entropy(logits, y)
        feature = feature_loss(zs)
        loss = RRM_WEIGHTS[tag] * ce + feature
        # The loss's partial derivatives at the logits and at the representation with the logits
        # held fixed: what the objective hands to the network's backward (zs.grad would also
        # hold the classifier's contribution). Stored to localise a mismatch.
        (g_logits,) = torch.autograd.grad(loss, logits, retain_graph=True)
        (g_feature,) = torch.autograd.grad(feature, zs, retain_graph=True)
        loss.backward()
        if tag == "cos":
            out.update({"outputs.student_logits": f32(logits), "outputs.student_representation": f32(zs)})
        out.update({f"{tag}.loss": f32(loss), f"{tag}.cross_entropy": f32(ce), f"{tag}.feature": f32(feature),
                    f"{tag}.logits_grad": f32(g_logits), f"{tag}.representation_grad": f32(g_feature)})
        out.update({f"{tag}.grad.{name}": f32(p.grad) for name, p in model.named_parameters()})
    return out


def rrm_case(seed, check=True):
    teacher, student, x, y = rrm_initial(seed)
    out = {"input": f32(x), "labels": y.clone()}
    out.update(state_tensors("teacher", teacher))
    out.update(state_tensors("student", student))
    kinks = {}
    golden = rrm_goldens(teacher, student, x, y, kinks=kinks)
    out.update(golden)
    n, c, h, w, k = RRM_INPUT
    meta = {"teacher_arch": RRM_TEACHER[0], "teacher_width_mult": repr(RRM_TEACHER[1]),
            "student_arch": RRM_STUDENT[0], "student_width_mult": repr(RRM_STUDENT[1]),
            "projection": str(RRM_STUDENT[2]), "in_channels": str(c), "height": str(h), "width": str(w),
            "num_classes": str(k), "batch": str(n), "mean": csv(CIFAR_MEAN), "std": csv(CIFAR_STD),
            "cos.xent_weight": repr(RRM_WEIGHTS["cos"]), "l2.xent_weight": repr(RRM_WEIGHTS["l2"]),
            "torch": torch.__version__, "seed": str(seed), "compute_dtype": "float64",
            "bn_momentum": "0.1", "bn_eps": "1e-05"}
    for tag, margin in kinks.items():
        meta[f"kink_margin.{tag}"] = f"{margin:.2e}"
    if check:
        meta["sensitivity.perturbation"] = f"{PERTURBATION:.0e}"
        worst = {}
        for d in range(2):
            other = rrm_goldens(teacher, student, x, y, perturb=torch.Generator().manual_seed(1000 + d))
            for key, ref in golden.items():
                change = ((other[key] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
                group = key.split(".")[0]
                worst[group] = max(worst.get(group, 0.0), change)
        for group, change in sorted(worst.items()):
            meta[f"sensitivity.{group}"] = f"{change:.2e}"
    return out, meta


def scan_rrm_seeds(count):
    """Ranks RRM-step seeds 0..count-1 by smallest kink margin (teacher and student passes)."""
    rows = []
    for seed in range(count):
        kinks = {}
        rrm_goldens(*rrm_initial(seed), kinks=kinks)
        rows.append((min(kinks.values()), seed, kinks))
    rows.sort(reverse=True)
    for margin, seed, kinks in rows[:5]:
        print(f"rrm-step     seed {seed:3d} min margin {margin:.2e} ("
              + " ".join(f"{t} {m:.1e}" for t, m in kinks.items()) + ")", flush=True)


def _dummy_optimizer(momentum=0.0):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=momentum)


def _run_schedule(opt, sched, iters, with_momentum=False):
    lrs, moms = [], []
    for _ in range(iters):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()  # no gradients: a no-op, but keeps the scheduler's call-order check quiet
        sched.step()
    return (lrs, moms) if with_momentum else lrs


def schedules():
    opt = _dummy_optimizer()
    cosine = _run_schedule(opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=1e-6), 50)
    opt = _dummy_optimizer()
    multistep = _run_schedule(opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[10, 30], gamma=0.1), 40)
    opt = _dummy_optimizer(momentum=0.9)
    onecycle_lr, onecycle_mom = _run_schedule(
        opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=40), 40, with_momentum=True)
    return {
        "_about": "Learning rate (and OneCycle momentum) in effect at iterations 0..n-1, read before each "
                  "scheduler.step(); base lr 0.1. Generated by Tools/pytorch/make_golden.py with torch "
                  + torch.__version__ + ".",
        "cosine": {"scheduler": "CosineAnnealingLR", "T_max": 50, "eta_min": 1e-6, "base_lr": 0.1,
                   "iterations": 50, "lr": cosine,
                   "closed_form_lr": [1e-6 + (0.1 - 1e-6) * (1 + math.cos(math.pi * t / 50)) / 2
                                      for t in range(50)]},
        "multistep": {"scheduler": "MultiStepLR", "milestones": [10, 30], "gamma": 0.1, "base_lr": 0.1,
                      "iterations": 40, "lr": multistep},
        "onecycle": {"scheduler": "OneCycleLR", "max_lr": 0.2, "total_steps": 40, "pct_start": 0.3,
                     "anneal_strategy": "cos", "div_factor": 25.0, "final_div_factor": 1e4,
                     "three_phase": False, "cycle_momentum": True, "base_momentum": 0.85,
                     "max_momentum": 0.95, "iterations": 40, "lr": onecycle_lr, "momentum": onecycle_mom},
    }


SGD_CONFIGS = [  # name, momentum, dampening, weight_decay, nesterov
    ("sgd_wd", 0.9, 0.0, 5e-4, False),
    ("nesterov", 0.9, 0.0, 0.0, True),
    ("nesterov_wd", 0.9, 0.0, 5e-4, True),
]


def optim_case(seed):
    torch.manual_seed(seed)
    init = {"w": torch.randn(3, 4), "b": torch.randn(4)}
    grads = [{k: torch.randn_like(v) for k, v in init.items()} for _ in range(3)]
    out = {f"init.{k}": v.clone() for k, v in init.items()}
    for s, g in enumerate(grads, start=1):
        out.update({f"grad{s}.{k}": v.clone() for k, v in g.items()})
    for name, momentum, dampening, wd, nesterov in SGD_CONFIGS:
        params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
        opt = torch.optim.SGD(list(params.values()), lr=LR, momentum=momentum, dampening=dampening,
                              weight_decay=wd, nesterov=nesterov)
        for s, g in enumerate(grads, start=1):
            for k, p in params.items():
                p.grad = g[k].clone()
            opt.step()
            out.update({f"{name}.step{s}.{k}": f32(p) for k, p in params.items()})
    meta = {"lr": repr(LR), "torch": torch.__version__, "seed": str(seed), "compute_dtype": "float32"}
    for name, momentum, dampening, wd, nesterov in SGD_CONFIGS:
        meta[name] = f"momentum={momentum},dampening={dampening},weight_decay={wd},nesterov={nesterov}"
    return out, meta


SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save(path, tensors, meta):
    """Writes a safetensors file byte-for-byte reproducibly (the safetensors package orders
    `__metadata__` differently from run to run): tensors in name order, data packed in that order,
    header JSON with sorted keys, space-padded to a multiple of 8 bytes."""
    header, blobs, offset = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        blob = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    assert set(load_file(str(path))) == set(tensors)
    print(f"{path.name:34s} {len(tensors):4d} tensors {path.stat().st_size / 1e6:7.3f} MB")


def main():
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=root / "Tests" / "ModelsTests" / "Fixtures")
    names = [c[0] for c in MODEL_CASES + PROJECTION_CASES] + ["rrm-step", "losses", "optim", "schedules"]
    ap.add_argument("--only", nargs="*", choices=names, help="generate only these fixtures")
    ap.add_argument("--scan-seeds", type=int, metavar="K",
                    help="instead of writing files, rank seeds 0..K-1 of the selected model cases by kink margin")
    ap.add_argument("--no-check", action="store_true", help="skip the perturbation sensitivity check")
    args = ap.parse_args()
    wanted = set(args.only or names)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    cases = [case for case in MODEL_CASES + PROJECTION_CASES if case[0] in wanted]
    if not args.scan_seeds:
        args.out.mkdir(parents=True, exist_ok=True)
    if args.scan_seeds:
        scan_seeds(cases, args.scan_seeds)
        if "rrm-step" in wanted:
            scan_rrm_seeds(args.scan_seeds)
        return
    for case in cases:
        save(args.out / f"{case[0]}.safetensors", *model_case(*case, check=not args.no_check))
    if "rrm-step" in wanted:
        save(args.out / "rrm-step.safetensors", *rrm_case(RRM_SEED, check=not args.no_check))
    if "losses" in wanted:
        save(args.out / "losses.safetensors", *losses_case(100))
    if "optim" in wanted:
        save(args.out / "optim.safetensors", *optim_case(101))
    if "schedules" in wanted:
        path = args.out / "schedules.json"
        path.write_text(json.dumps(schedules(), indent=1) + "\n")
        print(f"{path.name:34s}                {path.stat().st_size / 1e6:7.3f} MB")


if __name__ == "__main__":
    main()
