"""Space-filling-curve codes for voxelised points: z-order, Hilbert and their x/y-transposed variants.

A point cloud has no natural order; sorting by a curve code gives a 1-D sequence in which points that are
close in the sequence are (mostly) close in space, which is what lets a sequence model such as Mamba work
on it. Everything is vectorised integer arithmetic in torch (int64), so millions of points take well under
a second. Codes of the ``batch`` are put in the high bits so every scene stays contiguous after sorting.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")
MAX_DEPTH = 16  # 3*16 = 48 position bits, leaving 15 bits for the batch index in an int64


# --------------------------------------------------------------------------------------------- helpers
def bit_length(value: int) -> int:
    return int(value).bit_length()


def default_depth(max_coord: int) -> int:
    """Bits per axis of the serialization cube when none is given: Pointcept's rule, the bit length of
    ``max + 1`` (its ``Point.serialization``), one bit more than needed when the largest coordinate is 2^k - 1.

    The extra bit changes no z-order (leading zeros), but the Hilbert curve's orientation alternates with the
    depth, so the Hilbert orders, and the patches cut from them, are Pointcept's only under Pointcept's rule.
    """
    return max(bit_length(int(max_coord) + 1), 1)


def _check_grid(grid: torch.Tensor, depth: int | None) -> int:
    if grid.ndim != 2 or grid.shape[1] != 3:
        raise ValueError(f"grid coordinates must have shape (N, 3), got {tuple(grid.shape)}")
    if grid.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"grid coordinates must be integers, got {grid.dtype}")
    if grid.numel() and int(grid.min()) < 0:
        raise ValueError("grid coordinates must be non-negative (shift by the per-scene minimum first)")
    top = int(grid.max()) if grid.numel() else 0
    need = max(bit_length(top), 1)  # the fewest bits that hold every coordinate
    depth = default_depth(top) if depth is None else int(depth)
    if depth < need:
        raise ValueError(f"depth={depth} bits cannot hold grid coordinate {int(grid.max())} (needs {need})")
    if depth > MAX_DEPTH:
        raise ValueError(f"grid needs {depth} bits per axis; at most {MAX_DEPTH} fit in an int64 code "
                         "(use a coarser grid_size)")
    return depth


def _spread3(v: torch.Tensor) -> torch.Tensor:
    """Put bit i of ``v`` at bit 3i (the classic magic-number 'part1by2', 21 bits max)."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    v = (v | (v << 2)) & 0x1249249249249249
    return v


def _compact3(v: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_spread3`."""
    v = v & 0x1249249249249249
    v = (v | (v >> 2)) & 0x10C30C30C30C30C3
    v = (v | (v >> 4)) & 0x100F00F00F00F00F
    v = (v | (v >> 8)) & 0x1F0000FF0000FF
    v = (v | (v >> 16)) & 0x1F00000000FFFF
    v = (v | (v >> 32)) & 0x1FFFFF
    return v


# --------------------------------------------------------------------------------------------- z-order
def z_order_encode(grid: torch.Tensor, depth: int | None = None) -> torch.Tensor:
    """Morton code: bits of x, y, z interleaved (x most significant in each triple)."""
    _check_grid(grid, depth)
    g = grid.long()
    return (_spread3(g[:, 0]) << 2) | (_spread3(g[:, 1]) << 1) | _spread3(g[:, 2])


def z_order_decode(code: torch.Tensor) -> torch.Tensor:
    code = code.long()
    return torch.stack([_compact3(code >> 2), _compact3(code >> 1), _compact3(code)], dim=1)


def z_order_encode_reference(grid: torch.Tensor, depth: int | None = None) -> torch.Tensor:
    """Straightforward bit-by-bit interleave (one pass per bit); the benchmark's baseline."""
    depth = _check_grid(grid, depth)
    g = grid.long()
    code = torch.zeros(len(g), dtype=torch.long, device=g.device)
    for i in range(depth):
        for axis, shift in ((0, 2), (1, 1), (2, 0)):
            code |= ((g[:, axis] >> i) & 1) << (3 * i + shift)
    return code


# --------------------------------------------------------------------------------------------- Hilbert
def hilbert_encode_skilling(grid: torch.Tensor, depth: int | None = None) -> torch.Tensor:
    """Hilbert index by Skilling's (2004) axes-to-transpose transform, vectorised over points.

    This is the textbook algorithm (one pass per bit and axis, then a Gray decode); it defines the curve
    and is the reference the table-driven encoder below is built from and tested against.
    """
    depth = _check_grid(grid, depth)
    x = [grid[:, i].long().clone() for i in range(3)]
    q = 1 << (depth - 1)
    while q > 1:
        p = q - 1
        for i in range(3):
            hit = (x[i] & q) != 0
            # invert low bits of x0 where bit q of xi is set, otherwise exchange low bits of x0 and xi
            t = (x[0] ^ x[i]) & p
            x0_new = torch.where(hit, x[0] ^ p, x[0] ^ t)
            if i != 0:
                x[i] = torch.where(hit, x[i], x[i] ^ t)
            x[0] = x0_new
        q >>= 1
    for i in (1, 2):
        x[i] = x[i] ^ x[i - 1]
    t = torch.zeros_like(x[0])
    q = 1 << (depth - 1)
    while q > 1:
        t = torch.where((x[2] & q) != 0, t ^ (q - 1), t)
        q >>= 1
    x = [xi ^ t for xi in x]
    return (_spread3(x[0]) << 2) | (_spread3(x[1]) << 1) | _spread3(x[2])


@lru_cache(maxsize=None)
def _hilbert_states():
    """Derive the Hilbert curve's finite state machine (state, child octant) -> (digit, next state).

    States are read off Skilling's encoder on a small grid: a cell's state is the order its eight children
    are visited in. Self-similarity makes the next state a function of (state, octant), which is checked.
    """
    depth = 5  # the smallest grid on which all 24 states and 192 transitions appear
    ax = torch.arange(1 << depth)
    grid = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    code = hilbert_encode_skilling(grid, depth)
    state_of: dict[tuple, int] = {}
    table: dict[tuple[int, int], tuple[int, int]] = {}

    def child_map(level):
        # for every cell at `level`: its key and the digit of each of its 8 children, as (cells, 8)
        shift = depth - level - 1
        cell = grid >> (shift + 1)
        octant = (((grid[:, 0] >> shift) & 1) << 2) | (((grid[:, 1] >> shift) & 1) << 1) | ((grid[:, 2] >> shift) & 1)
        digit = (code >> (3 * shift)) & 7
        key = (cell[:, 0] << 40) | (cell[:, 1] << 20) | cell[:, 2]
        uniq, inv = torch.unique(key, return_inverse=True)
        maps = torch.zeros(len(uniq), 8, dtype=torch.long)
        maps[inv, octant] = digit
        return uniq, maps

    per_level = [child_map(level) for level in range(depth)]
    for _, maps in per_level:
        for m in map(tuple, maps.tolist()):
            state_of.setdefault(m, len(state_of))
    for level in range(depth - 1):
        keys, maps = per_level[level]
        child_keys, child_maps = per_level[level + 1]
        child_state = torch.tensor([state_of[tuple(m)] for m in child_maps.tolist()])
        parent_state = [state_of[tuple(m)] for m in maps.tolist()]
        cx, cy, cz = keys >> 40, (keys >> 20) & 0xFFFFF, keys & 0xFFFFF
        for o in range(8):
            child = ((cx * 2 + (o >> 2)) << 40) | ((cy * 2 + ((o >> 1) & 1)) << 20) | (cz * 2 + (o & 1))
            nxt = child_state[torch.searchsorted(child_keys, child)].tolist()
            for ps, d, ns in zip(parent_state, maps[:, o].tolist(), nxt):
                prev = table.setdefault((ps, o), (d, ns))
                if prev != (d, ns):  # pragma: no cover - would mean the curve is not self-similar
                    raise RuntimeError("Hilbert state machine is inconsistent")
    return state_of, table


@lru_cache(maxsize=None)
def _hilbert_tables(levels: int, device: str):
    """Packed lookup (state * 8**levels + key) -> digits | next_state << 3*levels for `levels` levels at once."""
    state_of, table = _hilbert_states()
    n_states = len(state_of)
    size = 1 << (3 * levels)
    lut = torch.zeros(n_states * size, dtype=torch.long)
    for s in range(n_states):
        for key in range(size):
            # key packs `levels` bits of x, then y, then z (most significant level first within each axis)
            bx, by, bz = key >> (2 * levels), (key >> levels) & ((1 << levels) - 1), key & ((1 << levels) - 1)
            state, digits = s, 0
            for lv in range(levels - 1, -1, -1):
                o = (((bx >> lv) & 1) << 2) | (((by >> lv) & 1) << 1) | ((bz >> lv) & 1)
                d, state = table[(state, o)]
                digits = (digits << 3) | d
            lut[s * size + key] = digits | (state << (3 * levels))
    return lut.to(device)


@lru_cache(maxsize=None)
def _root_state(depth: int) -> int:
    """The state of the whole cube for a curve of `depth` bits (its orientation alternates with depth)."""
    state_of, _ = _hilbert_states()
    half = 1 << (depth - 1)
    probe = torch.tensor([[(o >> 2) * half, ((o >> 1) & 1) * half, (o & 1) * half] for o in range(8)])
    digits = tuple((hilbert_encode_skilling(probe, depth) >> (3 * (depth - 1))).tolist())
    return state_of[digits]


def hilbert_encode(grid: torch.Tensor, depth: int | None = None, levels_per_step: int = 3) -> torch.Tensor:
    """Hilbert index via a state-machine lookup table, `levels_per_step` tree levels per vectorised step.

    Gives exactly the codes of :func:`hilbert_encode_skilling` with far fewer passes over the points.
    """
    depth = _check_grid(grid, depth)
    g = grid.long()
    dev = str(g.device)
    state = torch.full((len(g),), _root_state(depth), dtype=torch.long, device=g.device)
    code = torch.zeros(len(g), dtype=torch.long, device=g.device)
    done = 0
    while done < depth:
        lv = min(levels_per_step, depth - done) if done else (depth % levels_per_step or levels_per_step)
        lut = _hilbert_tables(lv, dev)
        shift = depth - done - lv
        mask = (1 << lv) - 1
        key = (((g[:, 0] >> shift) & mask) << (2 * lv)) | (((g[:, 1] >> shift) & mask) << lv) | ((g[:, 2] >> shift) & mask)
        entry = lut[(state << (3 * lv)) | key]
        code = (code << (3 * lv)) | (entry & ((1 << (3 * lv)) - 1))
        state = entry >> (3 * lv)
        done += lv
    return code


# --------------------------------------------------------------------------------------------- orders
def encode(grid: torch.Tensor, order: str, depth: int | None = None) -> torch.Tensor:
    """Code of one named order; the ``-trans`` variants swap x and y before encoding."""
    if order not in ORDERS:
        raise ValueError(f"unknown serialization order {order!r}; choose from {ORDERS}")
    g = grid[:, [1, 0, 2]] if order.endswith("-trans") else grid
    return z_order_encode(g, depth) if order.startswith("z") else hilbert_encode(g, depth)


@dataclass
class Serialization:
    """Codes, sort orders and their inverses for several curves over the same points.

    ``order[k]`` lists point indices along curve k; ``inverse[k][order[k]] == arange(N)``.
    """
    names: tuple[str, ...]
    code: torch.Tensor  # (O, N) int64, batch in the high bits
    order: torch.Tensor  # (O, N)
    inverse: torch.Tensor  # (O, N)
    depth: int

    def shuffled(self, generator: torch.Generator | None = None) -> "Serialization":
        """The same orders in a random sequence (PTv3 shuffles them so blocks see different curves)."""
        perm = torch.randperm(len(self.names), generator=generator).tolist()
        return Serialization(tuple(self.names[i] for i in perm), self.code[perm], self.order[perm],
                             self.inverse[perm], self.depth)


def inverse_permutation(order: torch.Tensor) -> torch.Tensor:
    inv = torch.empty_like(order)
    inv.scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
    return inv


def serialize(grid: torch.Tensor, batch: torch.Tensor | None = None, orders=ORDERS, depth: int | None = None) -> Serialization:
    """Sort points along each curve in ``orders``; scenes (``batch``) stay contiguous and in batch order."""
    if isinstance(orders, str):
        orders = (orders,)
    orders = tuple(orders)
    if not orders:
        raise ValueError("need at least one serialization order")
    depth = _check_grid(grid, depth)
    codes = torch.stack([encode(grid, o, depth) for o in orders])
    if batch is not None:
        if batch.shape != (len(grid),):
            raise ValueError(f"batch must have shape ({len(grid)},), got {tuple(batch.shape)}")
        n_batch_bits = bit_length(int(batch.max())) if batch.numel() else 0
        if 3 * depth + n_batch_bits > 62:
            raise ValueError(f"{int(batch.max()) + 1} scenes at depth {depth} do not fit in an int64 code")
        codes = codes | (batch.long() << (3 * depth))[None]
    order = torch.sort(codes, dim=1, stable=True).indices
    return Serialization(orders, codes, order, inverse_permutation(order), depth)


def shift_serialization(ser: Serialization, levels: int = 1) -> Serialization:
    """Codes of the parent cells ``levels`` up: for z-order and Hilbert alike this is ``code >> 3*levels``."""
    code = ser.code >> (3 * levels)
    order = torch.sort(code, dim=1, stable=True).indices
    return Serialization(ser.names, code, order, inverse_permutation(order), ser.depth - levels)


def locality(coord: torch.Tensor, order: torch.Tensor, window: int = 64) -> dict:
    """How local a 1-D order is: mean distance between sequence neighbours and mean spread of each window."""
    pts = coord[order].double()
    step = (pts[1:] - pts[:-1]).norm(dim=1)
    n = (len(pts) // window) * window
    win = pts[:n].view(-1, window, 3)
    spread = (win - win.mean(1, keepdim=True)).norm(dim=2).mean()
    return {"neighbour_dist": float(step.mean()), "neighbour_dist_p95": float(step.quantile(0.95)),
            "window_radius": float(spread)}
