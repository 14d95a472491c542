"""The workloads both bench tables compare: rrmd's `bench` key and the PyTorch peer's bench
and result keys (the faster of several keys counts)."""

ROWS = [
    ("ResNet-20 train", "resnet20_train", "resnet20", ["train"]),
    ("ResNet-20 inference", "resnet20_infer", "resnet20", ["infer"]),
    ("VGG-style train", "vgg_small_train", "vgg_small", ["train"]),
    ("RRM step", "rrm_step", "rrm_step", ["rrm_step"]),
    ("PGD-10 (faster of loop, torchattacks)", "pgd10", "pgd10_resnet20", ["pgd_manual", "pgd_torchattacks"]),
]
