"""docs/graduate.md end to end: minimrcnn weights -> references' --resume dict -> 2 gloo CPU processes
training 2 iterations as torchvision's references/detection/train.py does -> back to .npz -> minimrcnn eval.

The training loop below is our own minimal copy of what that script does with ``--resume`` (the
script is not vendored): DistributedSampler, DDP, SGD over the parameters that require grad,
MultiStepLR, the checkpoint's model/optimizer/lr_scheduler/epoch loaded with weights_only=True,
the first epoch's linear warm-up, and the checkpoint dict it saves (with its argparse Namespace).
The model line is the one docs/graduate.md tells to patch: ``torchvision_model("shapes", ...)``.
"""

import argparse
import json
import os
import re
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("pycocotools")

from minimrcnn.cli import main  # noqa: E402
from minimrcnn.models.weights import read_weights  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSET = os.path.join(ROOT, "lessons", "assets", "shapes_model.npz")
GUIDE = os.path.join(ROOT, "docs", "graduate.md")
WORLD_SIZE = 2
LR = 0.005           # 0.02 / 8 * 2 processes: the script's README rule
ITERATIONS = 2

# the commands of docs/graduate.md, run here with the test's small sizes
COMMANDS = [
    "minimrcnn shapes export data/shapes_ref --layout torchvision-references --num-images 8 --num-val-images 4 --seed 0",
    "minimrcnn shapes export data/shapes_val --num-images 4 --seed 1",
    "minimrcnn convert model.npz resume.pth --for-references --lr 0.005",
    "minimrcnn convert output/model_0.pth model_gpu.npz",
    "minimrcnn eval --weights model_gpu.npz --coco data/shapes_val",
]


class ReferencesCoco(torch.utils.data.Dataset):
    """The references' CocoDetection + ConvertCocoPolysToMask, reduced: (image [3, H, W], target)."""

    def __init__(self, root, split):
        from pycocotools.coco import COCO

        self.folder = os.path.join(root, f"{split}2017")
        self.coco = COCO(os.path.join(root, "annotations", f"instances_{split}2017.json"))
        self.ids = sorted(self.coco.imgs)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        from PIL import Image

        info = self.coco.imgs[self.ids[index]]
        image = np.asarray(Image.open(os.path.join(self.folder, info["file_name"])).convert("RGB"))
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"]))
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]                                   # xywh -> xyxy
        target = {"boxes": boxes, "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
                  "masks": torch.from_numpy(np.stack([self.coco.annToMask(a) for a in anns]))}
        return torch.from_numpy(image).permute(2, 0, 1).float() / 255, target


def train_worker(rank, data_path, resume, output_dir, port):
    """One process of `torchrun --nproc_per_node 2 train.py --device cpu --resume ...` (gloo)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from minimrcnn.interop import torchvision_model

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    torch.manual_seed(rank)
    args = argparse.Namespace(lr=0.02, momentum=0.9, weight_decay=1e-4, lr_steps=[16, 22], lr_gamma=0.1,
                              batch_size=2, epochs=1, resume=resume, output_dir=output_dir, device="cpu")
    dataset = ReferencesCoco(data_path, "train")
    sampler = torch.utils.data.distributed.DistributedSampler(dataset)
    batches = torch.utils.data.BatchSampler(sampler, args.batch_size, drop_last=True)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=lambda b: tuple(zip(*b)))
    model = torchvision_model("shapes", num_classes=4)               # the patched model line
    model_without_ddp = model
    model = DistributedDataParallel(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.lr_steps, gamma=args.lr_gamma)
    checkpoint = torch.load(args.resume, map_location="cpu", weights_only=True)
    model_without_ddp.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
    start_epoch = checkpoint["epoch"] + 1
    assert start_epoch == 0
    assert optimizer.param_groups[0]["lr"] == LR                      # --resume replaced --lr 0.02
    model.train()
    for epoch in range(start_epoch, args.epochs):
        sampler.set_epoch(epoch)
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / 1000,
                                                   total_iters=min(1000, len(loader) - 1))
        for iteration, (images, targets) in enumerate(loader):
            if iteration == ITERATIONS:
                break
            loss_dict = model(list(images), list(targets))
            losses = sum(loss for loss in loss_dict.values())
            assert torch.isfinite(losses)
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            warmup.step()
        lr_scheduler.step()
        state = {"model": model_without_ddp.state_dict(), "optimizer": optimizer.state_dict(),
                 "lr_scheduler": lr_scheduler.state_dict(), "args": args, "epoch": epoch}
        # the script saves on rank 0 only; rank 1 writes its copy so the test can see DDP kept them equal
        torch.save(state, os.path.join(output_dir, f"model_{epoch}.pth" if rank == 0 else f"rank{rank}.pth"))
    dist.barrier()
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command):
    assert command in open(GUIDE).read(), f"docs/graduate.md no longer shows: {command}"
    assert main(command.split()[1:]) == 0, command


@pytest.mark.torch
def test_weights_go_to_the_references_loop_and_come_back(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.symlink(ASSET, "model.npz")
    for command in COMMANDS[:3]:
        run(command)
    printed = capsys.readouterr().out
    assert "--resume" in printed and "lr 0.005" in printed
    checkpoint = torch.load("resume.pth", map_location="cpu", weights_only=True)   # as the script loads it
    assert sorted(checkpoint) == ["epoch", "lr_scheduler", "model", "optimizer"] and checkpoint["epoch"] == -1

    os.makedirs("output")
    torch.multiprocessing.spawn(train_worker, args=("data/shapes_ref", "resume.pth", "output", free_port()),
                                nprocs=WORLD_SIZE, join=True)
    rank0 = torch.load("output/model_0.pth", map_location="cpu", weights_only=False)["model"]
    rank1 = torch.load("output/rank1.pth", map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)        # DDP averaged the gradients

    for command in COMMANDS[3:]:
        run(command)
    before, after = read_weights("model.npz"), read_weights("model_gpu.npz")
    assert list(before) == list(after)
    changed = [k for k in before if not np.array_equal(before[k], after[k])]
    assert changed, "two SGD steps changed no weight"
    assert all(np.allclose(before[k], after[k], atol=0.05) for k in before)   # small steps, lr 0.005
    stats = json.load(open("eval.json"))
    assert stats["segm"]["AP"] > 0.3, stats["segm"]          # the trained asset still segments shapes
    out = capsys.readouterr().out
    assert re.search(r"segm: AP \d\.\d{3}", out)
