"""The peer of `rrmd bench --only rrm_step_wrn`, in shared/peers' conventions (batch 128, 3x32x32
random input, 2 threads, channels-last unless CHANNELS_LAST=0, timed by shared/peers' time_fn):
one RRM step of a ResNet-18 student (CIFAR variant) whose 512-d representation is projected to
640-d, against a frozen WRN-28-10 teacher in eval mode without gradients; loss
0.005 CE + mean(1 - cos). The networks are rrmd's PyTorch twins (Tools/pytorch/rrmd_models.py,
which match RobustBench's definitions key for key).

    PEERS=../shared/peers /work/torchvenv/bin/python Tools/peers/bench_rrm_wrn.py
"""
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

here = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("PEERS", str(here.parents[2] / "shared" / "peers")))
sys.path.insert(0, str(here.parent / "pytorch"))
from common import BATCH, count_forward_flops, emit, env_info, n_params, prep_model, random_batch, setup, time_fn  # noqa: E402
import rrmd_models  # noqa: E402

XENT = 0.005


class Features(torch.nn.Module):
    """The twin's representation as the module's output, for FLOP counting."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.representation(x)


if __name__ == "__main__":
    setup()
    teacher = prep_model(rrmd_models.build("wideresnet-28-10", 3, 32, 32, 10)).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = prep_model(rrmd_models.build("resnet18", 3, 32, 32, 10, projection=640))
    s_flops, t_flops = count_forward_flops(student), count_forward_flops(Features(teacher))
    x, y = random_batch()
    opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    student.train()

    def rrm_step():
        with torch.inference_mode():
            t_feat = teacher.representation(x)
        t_feat = t_feat.clone()
        opt.zero_grad(set_to_none=True)
        logits, s_feat = student(x, return_representation=True)
        loss = XENT * F.cross_entropy(logits, y) + (1.0 - F.cosine_similarity(s_feat, t_feat, dim=1)).mean()
        loss.backward()
        opt.step()

    def teacher_only():
        with torch.inference_mode():
            teacher.representation(x)

    rrm = time_fn(rrm_step, BATCH)
    tonly = time_fn(teacher_only, BATCH)
    step_flops = 3 * s_flops + t_flops
    emit({
        "bench": "rrm_step_wrn",
        **env_info(),
        "student_params": n_params(student),
        "teacher_params": n_params(teacher),
        "student_fwd_flops_per_image": s_flops,
        "teacher_fwd_flops_per_image": t_flops,
        "rrm_step": rrm,
        "teacher_forward_only": tonly,
        "rrm_gflops_achieved": round(step_flops * rrm["images_per_s_median"] / 1e9, 1),
    })
