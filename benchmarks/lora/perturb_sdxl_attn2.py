"""A stand-in for an SDXL erasure, for check_diffusers_lora.py (not part of CI): copies a diffusers SDXL folder and
moves every attn2 to_q/to_k/to_v/to_out.0 weight (ESD-x's matrices) by 1e-2 x a random rank-3 product / sqrt(n) plus
1e-4 x noise, biases untouched: a change of the kind LoraTinySdxlTest makes in Java (which uses 5x larger).

usage: python perturb_sdxl_attn2.py BASE_DIR OUT_DIR
"""
import re
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file


def main():
    base, out = sys.argv[1:]
    shutil.copytree(base, out)
    path = f"{out}/unet/diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    g = torch.Generator().manual_seed(18)
    changed = 0
    for name, w in tensors.items():
        if re.fullmatch(r".*\.attn2\.(to_q|to_k|to_v|to_out\.0)\.weight", name):
            m, n = w.shape
            left, right = torch.randn(m, 3, generator=g, dtype=torch.float64), torch.randn(3, n, generator=g, dtype=torch.float64)
            delta = 1e-2 * left @ right / n ** 0.5 + 1e-4 * torch.randn(m, n, generator=g, dtype=torch.float64)
            tensors[name] = (w.double() + delta).float()
            changed += 1
    save_file(tensors, path)
    print(f"{out}: {changed} attn2 weights changed")


if __name__ == "__main__":
    main()
