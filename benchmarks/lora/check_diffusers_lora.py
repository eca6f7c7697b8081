"""Does diffusers load our LoRA files, and does the UNet with the LoRA equal the erased model? (Not part of CI.)

Loads a LoRA file written by `esd-native train --format lora` / `weights extract-lora` with diffusers' own loader
(`LoraLoaderMixin.load_lora_weights`, i.e. `pipe.load_lora_weights`; diffusers 0.21.4, as the fixtures), then runs the
base UNet with the LoRA at scale 1 and the erased model's UNet on the fixtures' UNet inputs and prints how far apart
they are, relative to how far the erasure moved the output.

usage: python check_diffusers_lora.py BASE_DIR ERASED_DIR GOLDEN_DIR LORA.safetensors [LORA2.safetensors ...]
  BASE_DIR, ERASED_DIR: diffusers folders (e.g. tiny-sd-a and `train --method esd-x-strict --output ERASED_DIR`;
    for SDXL tiny-sdxl-a and a copy from perturb_sdxl_attn2.py)
  GOLDEN_DIR: tiny-sd-a-golden (unet_in_latents.npy, unet_in_context.npy, unet_in_timesteps.npy), or
    tiny-sdxl-a-golden (also unet_in_text_embeds.npy, unet_in_time_ids.npy: SDXL's added conditioning)
An SDXL UNet (addition_embed_type "text_time") gets the file as StableDiffusionXLPipeline.load_lora_weights gives it
(lora_state_dict with the UNet's config, then load_lora_into_unet); that pipeline itself needs transformers and
accelerate, which this check does without.
Needs torch, safetensors, numpy and diffusers 0.21.4 (its source tree on PYTHONPATH will do). With a
huggingface_hub ≥ 1.0, diffusers 0.21.4 fails at import on names the hub has since removed (hf_cache_home, HfFolder,
...); defining them before the import is enough, as loading local files uses none of them (results.md says how it
was run).
"""
import logging
import os
import sys

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders import LoraLoaderMixin
import safetensors.torch  # noqa: F401 (diffusers 0.21.4 calls safetensors.torch.load_file without importing it)
from safetensors import safe_open


class UnetPipeline(LoraLoaderMixin):
    """What `pipe.load_lora_weights` needs of a pipeline: our files hold UNet modules only, so no text encoder."""

    def __init__(self, unet):
        self.unet = unet
        self.text_encoder = None

    @property
    def components(self):   # load_attn_procs walks them for CPU offload hooks
        return {"unet": self.unet}

    def is_sdxl(self):
        return self.unet.config.addition_embed_type == "text_time"

    def state_dict_of(self, path):
        """lora_state_dict as the pipeline's load_lora_weights calls it: StableDiffusionXLPipeline passes its UNet's
        config, which is what maps SDXL's original-layout (input_blocks/middle_block/output_blocks) names."""
        if self.is_sdxl():
            return self.lora_state_dict(path, unet_config=self.unet.config)
        return self.lora_state_dict(path)

    def load_lora_weights(self, path):
        if not self.is_sdxl():
            return super().load_lora_weights(path)
        # StableDiffusionXLPipeline.load_lora_weights (0.21.4) without its accelerate-hook handling (no offloading here)
        # and its text-encoder part (our files hold no lora_te* key): these two calls
        state_dict, network_alphas = self.lora_state_dict(path, unet_config=self.unet.config)
        self.load_lora_into_unet(state_dict, network_alphas=network_alphas, unet=self.unet)


def main():
    base_dir, erased_dir, golden, *loras = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    latents = torch.from_numpy(np.load(os.path.join(golden, "unet_in_latents.npy")))
    context = torch.from_numpy(np.load(os.path.join(golden, "unet_in_context.npy")))
    timesteps = torch.from_numpy(np.load(os.path.join(golden, "unet_in_timesteps.npy")))

    added = None
    if os.path.exists(os.path.join(golden, "unet_in_text_embeds.npy")):   # SDXL: pooled text embeddings and time ids
        added = {"text_embeds": torch.from_numpy(np.load(os.path.join(golden, "unet_in_text_embeds.npy"))),
                 "time_ids": torch.from_numpy(np.load(os.path.join(golden, "unet_in_time_ids.npy")))}

    def run(unet):
        with torch.no_grad():
            return unet(latents, timesteps, encoder_hidden_states=context, added_cond_kwargs=added).sample.double()

    base_out = run(UNet2DConditionModel.from_pretrained(base_dir, subfolder="unet"))
    erased = UNet2DConditionModel.from_pretrained(erased_dir, subfolder="unet")
    erased_out = run(erased)
    effect = (erased_out - base_out).norm().item()
    # a LoRA carries weight matrices only: the erased model with its bias changes undone is what it can equal
    base_state = UNet2DConditionModel.from_pretrained(base_dir, subfolder="unet").state_dict()
    with torch.no_grad():
        for name, p in erased.named_parameters():
            if name.endswith(".bias") and not torch.equal(p, base_state[name]):
                p.copy_(base_state[name])
    matrices_out = run(erased)
    for path in loras:
        with safe_open(path, "pt") as f:
            keys = list(f.keys())
            meta = f.metadata()
        pipe = UnetPipeline(UNet2DConditionModel.from_pretrained(base_dir, subfolder="unet"))
        state_dict, alphas = pipe.state_dict_of(path)   # raises on any key it cannot rename (unexpected keys)
        pipe.load_lora_weights(path)
        lora_modules = [n for n, m in pipe.unet.named_modules() if getattr(m, "lora_layer", None) is not None]
        out = run(pipe.unet)
        off = (out - erased_out).norm().item()
        off_matrices = (out - matrices_out).norm().item()
        print(f"{os.path.basename(path)}: {len(keys)} keys -> {len(state_dict)} diffusers LoRA tensors, "
              f"{len(alphas)} alphas, {len(lora_modules)} linear layers with a LoRA; "
              f"rank {meta.get('esd.lora.rank')} {meta.get('esd.lora.dtype')}, worst reported residual "
              f"{float(meta.get('esd.lora.worst_residual')):.3e}; UNet output off the erased model's by "
              f"{off / effect:.3e} of the erasure's effect (max abs {(out - erased_out).abs().max().item():.2e}); "
              f"off the erased model without its bias changes by {off_matrices / effect:.3e} "
              f"(max abs {(out - matrices_out).abs().max().item():.2e})")


if __name__ == "__main__":
    main()
