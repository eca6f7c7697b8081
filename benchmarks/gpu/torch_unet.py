"""The machine's PyTorch on the UNet configuration that run-on-device.sh then times with esd-native.

SD 1.4's UNet (diffusers' UNet2DConditionModel with SD 1.4's config, random weights), batch 2, 64x64 latents,
77x768 context, float32, PyTorch's default TF32 policy (convolutions TF32, matmul strict float32: the same as
esd-native's default). Times the forward without gradients and the forward + backward (all parameter gradients):
one warm-up run, then the median of three, each synchronised. Exits 0 with a line saying why when torch, CUDA or
diffusers is missing.
"""
import statistics
import sys
import time


def main():
    try:
        import torch
    except ImportError:
        print("torch is not installed: not timed")
        return
    if not torch.cuda.is_available():
        print(f"torch {torch.__version__}: CUDA is not available: not timed")
        return
    try:
        from diffusers import UNet2DConditionModel
    except ImportError:
        print(f"torch {torch.__version__}: diffusers is not installed: not timed")
        return
    torch.backends.cudnn.allow_tf32 = True          # PyTorch's defaults, stated
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    unet = UNet2DConditionModel(  # SD 1.4 / 1.5
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).cuda()
    latents = torch.randn(2, 4, 64, 64, device="cuda")
    timesteps = torch.tensor([981, 1], device="cuda")
    context = torch.randn(2, 77, 768, device="cuda")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}; diffusers UNet "
          f"{sum(p.numel() for p in unet.parameters()):,} parameters; batch 2, 64x64 latents, float32")

    def forward():
        with torch.no_grad():
            unet(latents, timesteps, context).sample

    def forward_backward():
        unet.zero_grad(set_to_none=False)
        unet(latents, timesteps, context).sample.square().mean().backward()

    for name, work in (("UNet forward, batch 2", forward), ("UNet forward+backward, batch 2", forward_backward)):
        work()
        torch.cuda.synchronize()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            work()
            torch.cuda.synchronize()
            times.append(1000 * (time.perf_counter() - start))
        print(f"{name}: median {statistics.median(times):.1f} ms (runs {', '.join(f'{t:.1f}' for t in times)})")
    print(f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    sys.exit(main())
