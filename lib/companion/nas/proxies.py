"""Zero-cost proxies behind one interface: a network, a few batches and a loss in, one score out (higher is better).

``score(name, net, batches, loss_fn)`` runs the proxy ``name`` (see ``PROXIES``) on a deep copy of ``net``, so a
proxy that steps an optimizer (SiGeo), rewrites weights (Synflow) or freezes layers never touches the caller's
network. ``batches`` is a list of ``(inputs, targets)`` pairs: SiGeo and ZiCo read them as their scoring
mini-batches (the official CV code uses 4 x 64), the single-batch proxies (SNIP, GraSP, Synflow, NASWOT, GradNorm,
Fisher, Jacobian covariance) read them concatenated into one batch, as NASLib feeds them one loader batch of 256.

SiGeo comes in both released forms, because they disagree (notes: six_papers_addendum.md §1.2-1.3):

- ``sigeo`` / :func:`sigeo_cv` -- NASLib-SiGeo ``measures/SiGeo.py``: every Conv2d/Linear weight; an SGD step
  (lr 1) between gradient snapshots; population std; ZiCo summed over every coordinate with non-zero std;
  FR = 2 log(sum over layers of |theta . sum_b g| + 1e-5); score = ZiCo + lambda2 FR - lambda3 loss, with
  (lambda2, lambda3) = (50, 1) on a warmed-up network and (1, 0) on a fresh one.
- ``sigeo_recsys`` / :func:`sigeo_recsys` -- NasRec-SiGeo ``compute_zero_shot_metric`` + ``caculate_fr_zico``:
  every parameter tensor that still takes gradients (the released scripts freeze all but the final logit layer:
  ``only=("head",)`` here); Adagrad lr 0.04 inside the 10 % linear lr warm-up of a 500-step cosine schedule, gradient
  clipping at 5; unbiased std; the ZiCo term of each tensor reads only its *first* coordinate with non-zero std;
  FR = log(|sum over tensors of theta . sum_b g| + 1e-10) (absolute value after the sum, no factor 2); score =
  zico_coef ZiCo + fr_coef FR - loss_coef loss (the negative of the EA's fitness).

The pure statistics (:func:`cv_statistics`, :func:`recsys_statistics`) take recorded gradients and weights as
arrays, so the tests check them against hand-computed values.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Batch = tuple  # (inputs, targets); inputs a tensor or a dict of tensors
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PRUNABLE = (nn.Conv2d, nn.Linear)


# ----------------------------------------------------------------------------- helpers
def _forward(net: nn.Module, inputs):
    return net(inputs)


def _concat(batches: Sequence[Batch]) -> Batch:
    """One batch out of several (tensors or dicts of tensors), the way NASLib scores one 256-sample loader batch."""
    if len(batches) == 1:
        return batches[0]
    xs, ys = zip(*batches)
    if isinstance(xs[0], dict):
        x = {k: torch.cat([b[k] for b in xs]) for k in xs[0]}
    else:
        x = torch.cat(xs)
    return x, torch.cat(ys)


def _layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, PRUNABLE)]


def _check_batches(batches) -> list:
    batches = list(batches)
    if not batches:
        raise ValueError("a proxy needs at least one (inputs, targets) batch")
    return batches


def _set_trainable(net: nn.Module, only: Sequence[str] | None) -> None:
    """Freeze every parameter whose name does not start with one of ``only`` (None: leave all trainable)."""
    if only is None:
        return
    hit = False
    for name, p in net.named_parameters():
        keep = any(name == o or name.startswith(o + ".") for o in only)
        p.requires_grad_(keep)
        hit |= keep
    if not hit:
        names = sorted({n.rsplit(".", 1)[0] for n, _ in net.named_parameters()})
        raise ValueError(f"no parameter starts with {list(only)}; modules with parameters: {names[:12]}...")


# ----------------------------------------------------------------------------- SiGeo / ZiCo statistics
def cv_statistics(grads: dict[str, np.ndarray], theta: dict[str, np.ndarray]) -> dict:
    """The CV form's terms from per-layer gradients ``grads[l]`` of shape [B, n_l] and final weights ``theta[l]`` [n_l].

    ZiCo = sum_l log sum_j mean_b|g| / std_b g over coordinates with non-zero (population) std; a layer whose sum is
    0 is skipped for both terms; FR = 2 log(sum_l |sum_j theta_j sum_b g_bj| + 1e-5).
    """
    zico, fr_sum = 0.0, 0.0
    for name, g in grads.items():
        g = np.asarray(g, dtype=np.float64)
        sd = g.std(axis=0)
        nz = np.nonzero(sd)[0]
        s = float(np.sum(np.abs(g).mean(axis=0)[nz] / sd[nz]))
        if s == 0:
            continue
        zico += math.log(s)
        fr_sum += abs(float(np.sum(g.sum(axis=0) * np.asarray(theta[name], dtype=np.float64))))
    return {"zico": zico, "fr": 2 * math.log(fr_sum + 1e-5)}


def recsys_statistics(grads: dict[str, np.ndarray], theta: dict[str, np.ndarray]) -> dict:
    """The RecSys form's terms from per-tensor gradients [B, n] and final weights [n].

    Unbiased std over the B steps; the ZiCo term of a tensor uses its first coordinate with non-zero std only
    (a tensor without one contributes nothing; the official code raises there); FR = log(|sum_t theta_t . sum_b g_t|
    + 1e-10), the absolute value taken after summing over tensors.
    """
    zico, fr_sum = 0.0, 0.0
    for name, g in grads.items():
        g = np.asarray(g, dtype=np.float64)
        sd = g.std(axis=0, ddof=1) if g.shape[0] > 1 else np.zeros(g.shape[1])
        nz = np.nonzero(sd)[0]
        if len(nz):
            j = nz[0]
            s = float(np.abs(g[:, j]).mean() / sd[j])
            if s != 0:
                zico += math.log(s)
        fr_sum += float(np.sum(g.sum(axis=0) * np.asarray(theta[name], dtype=np.float64)))
    return {"zico": zico, "fr": math.log(abs(fr_sum) + 1e-10)}


def _weight_grads(net) -> dict[str, np.ndarray]:
    return {n: m.weight.grad.detach().reshape(-1).double().cpu().numpy().copy() if m.weight.grad is not None
            else np.zeros(m.weight.numel()) for n, m in _layers(net)}


def sigeo_cv_terms(net: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, forward=_forward, lr: float = 1.0) -> dict:
    """Run the CV scoring loop on ``net`` in place: per mini-batch zero, forward, backward, SGD step, record."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    net.train()
    rec: dict[str, list] = {n: [] for n, _ in _layers(net)}
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(forward(net, x), y)
        loss.backward()
        opt.step()  # plain SGD leaves .grad as it was: the recorded gradient is the one used for the step
        for n, g in _weight_grads(net).items():
            rec[n].append(g)
        losses.append(loss.item())
    theta = {n: m.weight.detach().reshape(-1).double().cpu().numpy() for n, m in _layers(net)}
    stats = cv_statistics({n: np.stack(v) for n, v in rec.items()}, theta)
    return {**stats, "loss": losses[-1], "losses": losses}


def sigeo_cv(net, batches, loss_fn, forward=_forward, warmed: bool = False, lambda2: float | None = None,
             lambda3: float | None = None, lr: float = 1.0) -> float:
    """SiGeo as NASLib-SiGeo scores a CV network (see the module docstring); ``warmed`` picks the official lambdas."""
    l2 = (50.0 if warmed else 1.0) if lambda2 is None else lambda2
    l3 = (1.0 if warmed else 0.0) if lambda3 is None else lambda3
    t = sigeo_cv_terms(net, batches, loss_fn, forward, lr)
    return t["zico"] + l2 * t["fr"] - l3 * t["loss"]


def zico(net, batches, loss_fn, forward=_forward) -> float:
    """ZiCo as in the fork's ``measures/zico.py``: fresh gradients per mini-batch, no optimizer step."""
    net.train()
    rec: dict[str, list] = {n: [] for n, _ in _layers(net)}
    for x, y in batches:
        net.zero_grad()
        loss_fn(forward(net, x), y).backward()
        for n, g in _weight_grads(net).items():
            rec[n].append(g)
    zero_theta = {n: np.zeros(len(v[0])) for n, v in rec.items()}
    return cv_statistics({n: np.stack(v) for n, v in rec.items()}, zero_theta)["zico"]


def sigeo_recsys_terms(net, batches, loss_fn, forward=_forward, only: Sequence[str] | None = ("head",),
                       lr: float = 0.04, lr_ramp_steps: int = 50, grad_clip: float | None = 5.0,
                       optimizer: str = "adagrad") -> dict:
    """The RecSys scoring run on ``net`` in place: ``len(batches)`` optimizer steps (the scripts use 4) on the
    parameters named by ``only``, recording every trainable tensor's (clipped) gradient and its last weights.

    The learning rate follows the released schedule's linear warm-up: step s runs at lr (s + 1) / lr_ramp_steps
    (10 % of the scripts' 500 max steps = 50), so 4 steps stay on the ramp.
    """
    _set_trainable(net, only)
    params = [p for p in net.parameters() if p.requires_grad]
    if optimizer == "adagrad":
        opt = torch.optim.Adagrad(params, lr=lr, eps=1e-2)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adagrad' or 'sgd', got {optimizer!r}")
    net.train()
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    rec: dict[str, list] = {n: [] for n, _ in named}
    loss = None
    for s, (x, y) in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (s + 1) / max(1, lr_ramp_steps))
        opt.zero_grad()
        loss = loss_fn(forward(net, x), y)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        for n, p in named:
            g = p.grad.detach().reshape(-1).double().cpu().numpy().copy() if p.grad is not None else np.zeros(p.numel())
            rec[n].append(g)
    theta = {n: p.detach().reshape(-1).double().cpu().numpy() for n, p in named}
    stats = recsys_statistics({n: np.stack(v) for n, v in rec.items()}, theta)
    return {**stats, "loss": loss.item()}


def sigeo_recsys(net, batches, loss_fn, forward=_forward, only: Sequence[str] | None = ("head",),
                 zico_coef: float = 1.0, fr_coef: float = 1.0, loss_coef: float = 1.0, **kw) -> float:
    """SiGeo as NasRec-SiGeo scores a subnet; higher is better (the EA minimises the negative)."""
    t = sigeo_recsys_terms(net, batches, loss_fn, forward, only, **kw)
    return zico_coef * t["zico"] + fr_coef * t["fr"] - loss_coef * t["loss"]


# ----------------------------------------------------------------------------- the other proxies (NASLib forms)
def snip(net, batches, loss_fn, forward=_forward) -> float:
    """SNIP: sum over Conv/Linear weights of |dL/dm| for a multiplicative mask m = 1, i.e. |w * dL/dw|."""
    x, y = _concat(batches)
    net.zero_grad()
    loss_fn(forward(net, x), y).backward()
    return float(sum((m.weight.detach() * m.weight.grad).abs().sum() for _, m in _layers(net) if m.weight.grad is not None))


def grad_norm(net, batches, loss_fn, forward=_forward) -> float:
    """GradNorm: sum over Conv/Linear layers of the L2 norm of the weight gradient."""
    x, y = _concat(batches)
    net.zero_grad()
    loss_fn(forward(net, x), y).backward()
    return float(sum(m.weight.grad.norm() for _, m in _layers(net) if m.weight.grad is not None))


def grasp(net, batches, loss_fn, forward=_forward) -> float:
    """GraSP: sum of -theta * (H g) over Conv/Linear weights (NASLib's sign: higher is better)."""
    x, y = _concat(batches)
    weights = [m.weight for _, m in _layers(net)]
    net.zero_grad()
    g = torch.autograd.grad(loss_fn(forward(net, x), y), weights, allow_unused=True)
    gf = torch.autograd.grad(loss_fn(forward(net, x), y), weights, create_graph=True, allow_unused=True)
    z = sum((a.detach() * b).sum() for a, b in zip(g, gf) if a is not None and b is not None)
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg) if h is not None))


def synflow(net, batches, loss_fn=None, forward=_forward) -> float:
    """Synflow: |theta| everywhere, an all-ones input of one sample in float64, sum(|theta * dR/dtheta|).

    The data only supply the input shape. The network runs in eval mode (NASLib builds it without BatchNorm for
    this proxy; here BatchNorm uses its running statistics, made non-negative like every other tensor)."""
    x, _ = batches[0]
    net.double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    net.zero_grad()
    forward(net, ones).sum().backward()
    return float(sum((m.weight.detach() * m.weight.grad).abs().sum() for _, m in _layers(net) if m.weight.grad is not None))


def naswot_kernel(codes: Iterable[torch.Tensor]) -> np.ndarray:
    """K = sum over ReLU layers of c c^T + (1 - c)(1 - c)^T for binary codes c [N, units]: units minus Hamming distance."""
    k = None
    for c in codes:
        c = c.double()
        term = c @ c.T + (1 - c) @ (1 - c).T
        k = term if k is None else k + term
    if k is None:
        raise ValueError("NASWOT needs at least one nn.ReLU module in the network")
    return k.numpy()


def naswot(net, batches, loss_fn=None, forward=_forward) -> float:
    """NASWOT (Mellor et al., v2): log|det K| of the binary activation-pattern kernel over every ``nn.ReLU`` input."""
    x, _ = _concat(batches)
    codes, hooks = [], []
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            hooks.append(m.register_forward_hook(lambda _m, inp, _o: codes.append((inp[0].detach().flatten(1) > 0))))
    try:
        with torch.no_grad():
            forward(net, x)
    finally:
        for h in hooks:
            h.remove()
    return float(np.linalg.slogdet(naswot_kernel(codes))[1])


def fisher(net, batches, loss_fn, forward=_forward) -> float:
    """Fisher (Turner et al.): per output channel of every Conv/Linear layer, 0.5 mean_n (sum_spatial a * dL/da)^2,
    broadcast to the channel's weights as NASLib does (so each channel counts fan-in times) and summed."""
    x, y = _concat(batches)
    acts, hooks = {}, []
    for name, m in _layers(net):
        def keep(_m, _i, out, name=name):
            out.retain_grad()
            acts[name] = out
        hooks.append(m.register_forward_hook(keep))
    try:
        net.train()
        net.zero_grad()
        loss_fn(forward(net, x), y).backward()
    finally:
        for h in hooks:
            h.remove()
    total = 0.0
    for name, m in _layers(net):
        a = acts.get(name)
        if a is None or a.grad is None:
            continue
        g = a.detach() * a.grad
        g = g.sum(dim=tuple(range(2, g.dim()))) if g.dim() > 2 else g
        per_channel = 0.5 * g.pow(2).mean(0)
        fan_in = int(np.prod(m.weight.shape[1:]))
        total += float(per_channel.abs().sum()) * fan_in
    return total


def jacob_cov(net, batches, loss_fn=None, forward=_forward) -> float:
    """Jacobian covariance (NASLib's form): input gradients J of sum(outputs) per sample, correlation matrix C,
    score -sum(log(v + 1e-5) + 1/(v + 1e-5)) over the eigenvalues v of C."""
    x, _ = _concat(batches)
    x = x.clone().requires_grad_(True)
    net.zero_grad()
    y = forward(net, x)
    y.backward(torch.ones_like(y))
    j = x.grad.detach().flatten(1).double().numpy()
    v = np.linalg.eigvalsh(np.corrcoef(j))
    k = 1e-5
    return float(-np.sum(np.log(np.clip(v, 0, None) + k) + 1.0 / (np.clip(v, 0, None) + k)))


def n_params(net, batches=None, loss_fn=None, forward=_forward) -> float:
    """Trainable parameter count."""
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))


def flops(net, batches, loss_fn=None, forward=_forward) -> float:
    """FLOPs of one forward pass on one sample, 2 per multiply-add: linear maps and matrix products from
    ``companion.cost.flops``, which does not see convolutions, plus every ``nn.Conv2d`` counted by a forward hook."""
    from ..cost.flops import count_flops

    x, _ = batches[0]
    one = {k: v[:1] for k, v in x.items()} if isinstance(x, dict) else x[:1]
    conv = [0]

    def hook(m, _inp, out):
        conv[0] += 2 * out.numel() * (m.in_channels // m.groups) * int(np.prod(m.kernel_size))
    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        total = count_flops(_ForwardWrap(net, forward), one)
    finally:
        for h in hooks:
            h.remove()
    return float(total + conv[0])


class _ForwardWrap(nn.Module):
    def __init__(self, net, forward):
        super().__init__()
        self.net, self.fwd = net, forward

    def forward(self, x):
        return self.fwd(self.net, x)


PROXIES: dict[str, Callable] = {
    "sigeo": sigeo_cv, "sigeo_recsys": sigeo_recsys, "zico": zico, "snip": snip, "grasp": grasp,
    "synflow": synflow, "naswot": naswot, "grad_norm": grad_norm, "fisher": fisher, "jacob_cov": jacob_cov,
    "params": n_params, "flops": flops,
}
LABELS = {"sigeo": "SiGeo", "sigeo_recsys": "SiGeo (RecSys form)", "zico": "ZiCo", "snip": "SNIP", "grasp": "GraSP",
          "synflow": "Synflow", "naswot": "NASWOT", "grad_norm": "GradNorm", "fisher": "Fisher",
          "jacob_cov": "Jacob. cov.", "params": "#params", "flops": "FLOPs"}


def score(name: str, net: nn.Module, batches: Sequence[Batch], loss_fn: LossFn | None = None,
          forward: Callable = _forward, **kw) -> float:
    """Proxy ``name`` on a deep copy of ``net`` (higher is better); ``kw`` go to the proxy (e.g. ``warmed=True``)."""
    if name not in PROXIES:
        raise ValueError(f"unknown proxy {name!r}; choose from {sorted(PROXIES)}")
    batches = _check_batches(batches)
    return float(PROXIES[name](copy.deepcopy(net), batches, loss_fn, forward, **kw))


def score_all(names: Sequence[str], net, batches, loss_fn=None, forward=_forward, options: dict | None = None) -> dict:
    """Several proxies on the same network and batches (each on its own copy)."""
    options = options or {}
    return {n: score(n, net, batches, loss_fn, forward, **options.get(n, {})) for n in names}
