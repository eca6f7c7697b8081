"""PyTorch's CPU time for SD 1.4's UNet, to set beside `esd-native bench --config sd14 --what unet-forward,unet-backward`.

diffusers is not installable on this project's machines, so this is SD 1.4's UNet2DConditionModel written out in plain
torch with diffusers' layer order and shapes (random weights, seed 0); its parameter count is checked against
diffusers' (859,520,964). Batch 1, 64x64 latents, 77x768 context, float32. Attention either as diffusers runs it on
torch 2 (F.scaled_dot_product_attention: torch's own fused CPU kernel) or as on torch 1.x (scores, softmax, product).
Times the forward without gradients and the forward + backward (all parameter gradients, loss mean(out²)): one
warm-up run, then each of --repeat runs, wall and process CPU seconds (on a shared machine the CPU seconds say more).

usage: python torch_sd14_unet.py [--threads 2] [--repeat 3] [--attention sdpa|naive] [--what forward,backward]
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

SD14_PARAMETERS = 859_520_964


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb=1280):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(32, cin, eps=1e-5), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(32, cout, eps=1e-5), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.shortcut(x) if self.shortcut is not None else x) + h


class Attention(nn.Module):
    def __init__(self, dim, context_dim, heads, sdpa):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, ctx):
        b, lq, dim = x.shape
        d = dim // self.heads
        q, k, v = (t.view(b, -1, self.heads, d).transpose(1, 2) for t in (self.to_q(x), self.to_k(ctx), self.to_v(ctx)))
        if self.sdpa:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1) @ v
        return self.to_out(o.transpose(1, 2).reshape(b, lq, dim))


class Transformer(nn.Module):
    def __init__(self, dim, sdpa, heads=8, context_dim=768):
        super().__init__()
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.proj_in, self.proj_out = nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 1)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1 = Attention(dim, dim, heads, sdpa)
        self.attn2 = Attention(dim, context_dim, heads, sdpa)
        self.geglu, self.ff_out = nn.Linear(dim, 8 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x, ctx):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        n1 = self.norm1(h)
        h = self.attn1(n1, n1) + h
        h = self.attn2(self.norm2(h), ctx) + h
        a, gate = self.geglu(self.norm3(h)).chunk(2, dim=-1)
        h = self.ff_out(a * F.gelu(gate)) + h
        return self.proj_out(h.reshape(b, hh, ww, c).permute(0, 3, 1, 2)) + x


class UNet(nn.Module):
    """SD 1.4's UNet2DConditionModel: block_out_channels (320, 640, 1280, 1280), 2 layers per block, 8 heads."""

    def __init__(self, sdpa):
        super().__init__()
        ch = (320, 640, 1280, 1280)
        self.conv_in = nn.Conv2d(4, 320, 3, padding=1)
        self.time_1, self.time_2 = nn.Linear(320, 1280), nn.Linear(1280, 1280)
        self.down = nn.ModuleList()
        cin = 320
        for i, c in enumerate(ch):
            block = nn.Module()
            block.resnets = nn.ModuleList([Resnet(cin, c), Resnet(c, c)])
            block.attentions = nn.ModuleList([Transformer(c, sdpa) for _ in range(2)]) if i < 3 else None
            block.downsample = nn.Conv2d(c, c, 3, stride=2, padding=1) if i < 3 else None
            self.down.append(block)
            cin = c
        self.mid_resnets = nn.ModuleList([Resnet(1280, 1280), Resnet(1280, 1280)])
        self.mid_attention = Transformer(1280, sdpa)
        rev = ch[::-1]
        self.up = nn.ModuleList()
        prev = rev[0]
        for i, c in enumerate(rev):
            inp = rev[min(i + 1, 3)]
            block = nn.Module()
            block.resnets = nn.ModuleList([Resnet((prev if j == 0 else c) + (inp if j == 2 else c), c) for j in range(3)])
            block.attentions = nn.ModuleList([Transformer(c, sdpa) for _ in range(3)]) if i > 0 else None
            block.upsample = nn.Conv2d(c, c, 3, padding=1) if i < 3 else None
            self.up.append(block)
            prev = c
        self.norm_out, self.conv_out = nn.GroupNorm(32, 320, eps=1e-5), nn.Conv2d(320, 4, 3, padding=1)

    def forward(self, x, t, ctx):
        half = 160   # diffusers' Timesteps(320, flip_sin_to_cos=True, downscale_freq_shift=0)
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        temb = self.time_2(F.silu(self.time_1(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            for j, resnet in enumerate(block.resnets):
                h = resnet(h, temb)
                if block.attentions is not None:
                    h = block.attentions[j](h, ctx)
                skips.append(h)
            if block.downsample is not None:
                h = block.downsample(h)
                skips.append(h)
        h = self.mid_attention(self.mid_resnets[0](h, temb), ctx)
        h = self.mid_resnets[1](h, temb)
        for block in self.up:
            for j, resnet in enumerate(block.resnets):
                h = resnet(torch.cat([h, skips.pop()], dim=1), temb)
                if block.attentions is not None:
                    h = block.attentions[j](h, ctx)
            if block.upsample is not None:
                h = block.upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--attention", choices=("sdpa", "naive"), default="sdpa")
    ap.add_argument("--what", default="forward,backward")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    unet = UNet(a.attention == "sdpa")
    params = sum(p.numel() for p in unet.parameters())
    if params != SD14_PARAMETERS:
        raise SystemExit(f"{params:,} parameters, SD 1.4's UNet has {SD14_PARAMETERS:,}: the architecture is off")
    latents, t, ctx = torch.randn(1, 4, 64, 64), torch.tensor([981]), torch.randn(1, 77, 768)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; SD 1.4 UNet {params:,} parameters; "
          f"batch 1, 64x64 latents, float32, attention {a.attention}")

    def forward():
        with torch.no_grad():
            unet(latents, t, ctx)

    def forward_backward():
        unet.zero_grad(set_to_none=False)
        unet(latents, t, ctx).square().mean().backward()

    for name, work in (("forward", forward), ("backward", forward_backward)):
        if name not in a.what.split(","):
            continue
        work()
        times, cpu = [], []
        for _ in range(a.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            work()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        label = "UNet forward" if name == "forward" else "UNet forward+backward"
        print(f"{label}: median {statistics.median(times):.2f} s (runs {', '.join(f'{x:.2f}' for x in times)}); "
              f"process CPU {', '.join(f'{x:.2f}' for x in cpu)} s", flush=True)


if __name__ == "__main__":
    main()
