"""GPU check: our Mamba block gives mamba-ssm's result, with and without the CUDA kernel.

    python benchmarks/gpu_check_mamba.py            # needs an NVIDIA GPU and `pip install mamba-ssm`

Checks, in float32 on one GPU:
1. ``companion.models.mamba.Mamba`` with ``use_kernel=True`` (mamba-ssm's selective_scan_fn) against the same
   module with ``use_kernel=False`` (the pure-PyTorch group-checkpointed scan, the CPU default), forward and gradients;
2. ``mamba_ssm.Mamba`` loaded with our ``state_dict`` against ours (their fused fast path);
3. a padded sequence with a mask against the unpadded one, through the kernel;
then times the kernel and the pure-PyTorch scan. Exits 1 if any check fails.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from companion.models.mamba import Mamba, cuda_selective_scan  # noqa: E402


def close(name, a, b, atol=2e-4, rtol=2e-3):
    err = (a - b).abs().max().item()
    ok = torch.allclose(a, b, atol=atol, rtol=rtol)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max |diff| {err:.2e}")
    return ok


def timed(fn, repeats=10):
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    if cuda_selective_scan() is None:
        print("mamba-ssm is not installed (pip install mamba-ssm): nothing to check")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device("cuda")
    ok = True
    for d_model, length, bsz in ((64, 1024, 4), (128, 4096, 2)):
        m = Mamba(d_model, d_state=16, d_conv=4, expand=2).to(dev)
        x = torch.randn(bsz, length, d_model, device=dev, requires_grad=True)
        m.use_kernel = True
        y_k = m(x)
        g_k = torch.autograd.grad(y_k.square().mean(), [x] + list(m.parameters()))
        m.use_kernel = False
        y_t = m(x)
        g_t = torch.autograd.grad(y_t.square().mean(), [x] + list(m.parameters()))
        ok &= close(f"kernel vs pure PyTorch, forward (d={d_model}, L={length})", y_k, y_t)
        ok &= all(close(f"  grad {n}", a, b, atol=1e-4, rtol=1e-2)
                  for n, a, b in zip(["x"] + [n for n, _ in m.named_parameters()], g_k, g_t))
        from mamba_ssm import Mamba as RefMamba

        ref = RefMamba(d_model, d_state=16, d_conv=4, expand=2).to(dev)
        ref.load_state_dict(m.state_dict())
        with torch.no_grad():
            ok &= close(f"mamba_ssm.Mamba vs ours (d={d_model}, L={length})", ref(x), y_t)
        # masking: padded + mask must equal unpadded, through the kernel too
        m.use_kernel = True
        with torch.no_grad():
            pad = torch.randn(bsz, 37, d_model, device=dev)
            mask = torch.ones(bsz, length + 37, dtype=torch.bool, device=dev)
            mask[:, length:] = False
            ok &= close("masked padding through the kernel", m(torch.cat([x, pad], 1), mask)[:, :length], m(x))
            t_k = timed(lambda: m(x))
            m.use_kernel = False
            t_t = timed(lambda: m(x))
        print(f"     forward time d={d_model} L={length} B={bsz}: kernel {t_k * 1e3:.2f} ms, "
              f"pure PyTorch {t_t * 1e3:.2f} ms ({t_t / t_k:.1f}x)")
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
