"""Procedural indoor rooms labelled with the 13 S3DIS classes: the default data of the point-cloud notebook.

Each room is built from boxes and rectangles (floor, ceiling, walls with windows, a door and a board, beams,
columns, tables with chairs, a sofa, bookcases, clutter), sampled as surface points with colour, normal,
semantic and instance labels. Colours overlap between classes (walls, ceiling, beams and columns are all
pale; boards and windows sit flush on walls), so a model has to use geometry and context, not colour alone.
The ground truth is exact by construction.
"""
from __future__ import annotations

import numpy as np

S3DIS_CLASSES = ("ceiling", "floor", "wall", "beam", "column", "window", "door", "table", "chair", "sofa",
                 "bookcase", "board", "clutter")
_CID = {c: i for i, c in enumerate(S3DIS_CLASSES)}
_BASE_COLOR = {
    "ceiling": (205, 205, 200), "floor": (150, 135, 115), "wall": (195, 190, 180), "beam": (190, 185, 175),
    "column": (185, 180, 172), "window": (160, 185, 205), "door": (135, 100, 70), "table": (125, 95, 65),
    "chair": (90, 90, 100), "sofa": (110, 60, 60), "bookcase": (140, 110, 80), "board": (215, 215, 210),
    "clutter": (120, 130, 120),
}


class _Builder:
    """Collects rectangles (origin, two edges, class, instance) and samples points on them by area."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.rects: list[tuple] = []
        self.n_inst = 0

    def rect(self, origin, e1, e2, cls, inst, normal=None):
        origin, e1, e2 = (np.asarray(v, dtype=np.float64) for v in (origin, e1, e2))
        n = np.cross(e1, e2) if normal is None else np.asarray(normal, dtype=np.float64)
        n = n / (np.linalg.norm(n) + 1e-12)
        self.rects.append((origin, e1, e2, n, _CID[cls], inst))

    def new_instance(self) -> int:
        self.n_inst += 1
        return self.n_inst - 1

    def box(self, lo, hi, cls, inst=None, bottom=False):
        """Five (or six) faces of an axis-aligned box, normals pointing out."""
        inst = self.new_instance() if inst is None else inst
        (x0, y0, z0), (x1, y1, z1) = lo, hi
        dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
        self.rect((x0, y0, z1), (dx, 0, 0), (0, dy, 0), cls, inst, (0, 0, 1))
        if bottom:
            self.rect((x0, y0, z0), (dx, 0, 0), (0, dy, 0), cls, inst, (0, 0, -1))
        self.rect((x0, y0, z0), (dx, 0, 0), (0, 0, dz), cls, inst, (0, -1, 0))
        self.rect((x0, y1, z0), (dx, 0, 0), (0, 0, dz), cls, inst, (0, 1, 0))
        self.rect((x0, y0, z0), (0, dy, 0), (0, 0, dz), cls, inst, (-1, 0, 0))
        self.rect((x1, y0, z0), (0, dy, 0), (0, 0, dz), cls, inst, (1, 0, 0))
        return inst

    def area(self) -> float:
        return float(sum(np.linalg.norm(np.cross(r[1], r[2])) for r in self.rects))

    def sample(self, n_points: int, noise: float, color_noise: float):
        rng = self.rng
        area = np.array([np.linalg.norm(np.cross(r[1], r[2])) for r in self.rects])
        counts = rng.multinomial(n_points, area / area.sum())
        inst_shift = rng.normal(0, 18, size=(self.n_inst, 3))
        coord, color, normal, sem, ins = [], [], [], [], []
        for (o, e1, e2, n, c, i), k in zip(self.rects, counts):
            if k == 0:
                continue
            uv = rng.random((k, 2))
            coord.append(o + uv[:, :1] * e1 + uv[:, 1:] * e2)
            base = np.array(_BASE_COLOR[S3DIS_CLASSES[c]], dtype=np.float64) + inst_shift[i]
            color.append(base + rng.normal(0, color_noise, (k, 3)))
            normal.append(np.repeat(n[None], k, 0))
            sem.append(np.full(k, c))
            ins.append(np.full(k, i))
        coord = np.concatenate(coord) + rng.normal(0, noise, (n_points, 3))
        return {
            "coord": coord.astype(np.float32),
            "color": np.clip(np.concatenate(color), 0, 255).astype(np.uint8),
            "normal": np.concatenate(normal).astype(np.float32),
            "segment": np.concatenate(sem).astype(np.int64),
            "instance": np.concatenate(ins).astype(np.int64),
        }


def make_room(rng: np.random.Generator | int, n_points: int | None = 8000, noise: float = 0.008,
              color_noise: float = 12.0, points_per_m2: float | None = None) -> dict:
    """One random room as a dict of numpy arrays: coord, color (uint8), normal, segment, instance.

    ``points_per_m2`` (instead of ``n_points``) samples the surfaces at a fixed density, so a larger room gets
    more points rather than a denser cloud; the room's surface area is returned as ``area_m2`` either way.
    """
    if (n_points is None) == (points_per_m2 is None):
        raise ValueError("give exactly one of n_points and points_per_m2")
    if n_points is not None and n_points < 100:
        raise ValueError(f"n_points must be at least 100, got {n_points}")
    if points_per_m2 is not None and not points_per_m2 > 0:
        raise ValueError(f"points_per_m2 must be positive, got {points_per_m2}")
    rng = np.random.default_rng(rng)
    W, D, H = rng.uniform(4, 8), rng.uniform(4, 7), rng.uniform(2.6, 3.3)
    b = _Builder(rng)
    b.rect((0, 0, 0), (W, 0, 0), (0, D, 0), "floor", b.new_instance(), (0, 0, 1))
    b.rect((0, 0, H), (W, 0, 0), (0, D, 0), "ceiling", b.new_instance(), (0, 0, -1))
    # walls: (origin, along-wall unit, inward normal, length)
    walls = [((0, 0, 0), (1, 0, 0), (0, 1, 0), W), ((0, D, 0), (1, 0, 0), (0, -1, 0), W),
             ((0, 0, 0), (0, 1, 0), (1, 0, 0), D), ((W, 0, 0), (0, 1, 0), (-1, 0, 0), D)]
    for o, u, n, length in walls:
        b.rect(o, np.multiply(u, length), (0, 0, H), "wall", b.new_instance(), n)

    def on_wall(k, width, height, z0, cls, depth):
        o, u, n, length = walls[k]
        if width > length - 0.4:
            return
        s = rng.uniform(0.2, length - width - 0.2)
        origin = np.add(o, np.multiply(u, s)) + np.multiply(n, depth) + (0, 0, z0)
        b.rect(origin, np.multiply(u, width), (0, 0, height), cls, b.new_instance(), n)

    for k in rng.choice(4, size=rng.integers(1, 3), replace=False):
        for _ in range(rng.integers(1, 3)):
            on_wall(k, rng.uniform(0.8, 1.6), rng.uniform(1.0, 1.4), rng.uniform(0.8, 1.1), "window", 0.01)
    on_wall(int(rng.integers(4)), rng.uniform(0.85, 1.0), rng.uniform(2.0, 2.2), 0.0, "door", 0.03)
    if rng.random() < 0.7:
        on_wall(int(rng.integers(4)), rng.uniform(1.5, 3.0), rng.uniform(0.9, 1.2), rng.uniform(0.85, 1.0), "board", 0.02)
    for _ in range(rng.integers(0, 3)):  # beams across the ceiling
        if rng.random() < 0.5:
            y = rng.uniform(0.5, D - 0.5)
            b.box((0, y - 0.15, H - 0.35), (W, y + 0.15, H), "beam", bottom=True)
        else:
            x = rng.uniform(0.5, W - 0.5)
            b.box((x - 0.15, 0, H - 0.35), (x + 0.15, D, H), "beam", bottom=True)
    for _ in range(rng.integers(0, 3)):  # columns against a wall
        x, y = (rng.uniform(0.3, W - 0.3), rng.choice([0.0, D - 0.4])) if rng.random() < 0.5 else \
               (rng.choice([0.0, W - 0.4]), rng.uniform(0.3, D - 0.3))
        b.box((x, y, 0), (x + 0.4, y + 0.4, H), "column")
    for _ in range(rng.integers(1, 3)):  # tables with chairs
        tw, td = rng.uniform(1.0, 2.0), rng.uniform(0.6, 1.0)
        tx, ty, th = rng.uniform(0.8, max(0.9, W - tw - 0.8)), rng.uniform(0.8, max(0.9, D - td - 0.8)), rng.uniform(0.7, 0.78)
        t = b.box((tx, ty, th - 0.04), (tx + tw, ty + td, th), "table", bottom=True)
        for lx, ly in ((tx, ty), (tx + tw - 0.05, ty), (tx, ty + td - 0.05), (tx + tw - 0.05, ty + td - 0.05)):
            b.box((lx, ly, 0), (lx + 0.05, ly + 0.05, th - 0.04), "table", inst=t)
        for _ in range(rng.integers(1, 5)):
            side = rng.integers(2)
            cx = tx + rng.uniform(0, tw - 0.45)
            cy = ty - 0.55 if side == 0 else ty + td + 0.1
            c = b.box((cx, cy, 0.42), (cx + 0.45, cy + 0.45, 0.46), "chair", bottom=True)
            by = cy if side == 1 else cy + 0.4
            b.box((cx, by + (0.4 if side == 1 else 0), 0.46), (cx + 0.45, by + (0.45 if side == 1 else 0.05), 0.9), "chair", inst=c)
            for lx, ly in ((cx, cy), (cx + 0.41, cy), (cx, cy + 0.41), (cx + 0.41, cy + 0.41)):
                b.box((lx, ly, 0), (lx + 0.04, ly + 0.04, 0.42), "chair", inst=c)
    if rng.random() < 0.5:  # sofa along the far wall
        sw = rng.uniform(1.6, 2.2)
        sx = rng.uniform(0.3, max(0.4, W - sw - 0.3))
        s = b.box((sx, D - 0.9, 0), (sx + sw, D - 0.1, 0.42), "sofa")
        b.box((sx, D - 0.3, 0.42), (sx + sw, D - 0.1, 0.85), "sofa", inst=s)
    for _ in range(rng.integers(0, 3)):  # bookcases against the left/right walls
        bw, bh = rng.uniform(0.8, 1.2), rng.uniform(1.7, 2.2)
        by = rng.uniform(0.3, max(0.4, D - bw - 0.3))
        x0 = 0.02 if rng.random() < 0.5 else W - 0.39
        k = b.box((x0, by, 0), (x0 + 0.37, by + bw, bh), "bookcase")
        for z in np.linspace(0.35, bh - 0.3, 4):
            b.rect((x0, by, z), (0.37, 0, 0), (0, bw, 0), "bookcase", k, (0, 0, 1))
    for _ in range(rng.integers(3, 10)):  # clutter on the floor
        s = rng.uniform(0.1, 0.45, 3)
        x, y = rng.uniform(0.2, W - 0.6), rng.uniform(0.2, D - 0.6)
        b.box((x, y, 0), (x + s[0], y + s[1], s[2]), "clutter")
    area = b.area()
    if n_points is None:
        n_points = max(100, int(round(points_per_m2 * area)))
    room = b.sample(n_points, noise, color_noise)
    room["area_m2"] = area
    room["footprint_m2"] = float(W * D)
    return room


def make_building(n_rooms: int, seed: int = 0, points_per_m2: float = 200.0, gap: float = 0.5, **kwargs) -> dict:
    """``n_rooms`` rooms side by side on a floor plan (rows of ceil(sqrt(n)) rooms), each sampled at the same
    surface density: the scene grows in area, not in density, as rooms are added (what a bigger scan is).

    Room i depends only on (seed, i), so a building of n rooms is the first n rooms of a larger one.
    """
    if n_rooms < 1:
        raise ValueError(f"n_rooms must be >= 1, got {n_rooms}")
    per_row = int(np.ceil(np.sqrt(n_rooms)))
    parts, x0, y0, row_depth, footprint, area = [], 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(n_rooms):
        if i and i % per_row == 0:
            x0, y0, row_depth = 0.0, y0 + row_depth + gap, 0.0
        r = make_room(np.random.default_rng([seed, i]), None, points_per_m2=points_per_m2, **kwargs)
        lo = r["coord"].min(0)
        extent = r["coord"].max(0) - lo
        r["coord"] = (r["coord"] - np.array([lo[0] - x0, lo[1] - y0, 0.0], dtype=np.float32)).astype(np.float32)
        x0 += float(extent[0]) + gap
        row_depth = max(row_depth, float(extent[1]))
        footprint += r.pop("footprint_m2")
        area += r.pop("area_m2")
        parts.append(r)
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("coord", "color", "normal", "segment")}
    offsets = np.cumsum([0] + [p["instance"].max() + 1 for p in parts[:-1]])
    out["instance"] = np.concatenate([p["instance"] + o for p, o in zip(parts, offsets)])
    out["area_m2"], out["footprint_m2"], out["n_rooms"] = area, footprint, n_rooms
    return out


def make_rooms(n_rooms: int, seed: int = 0, n_points: int = 8000, **kwargs) -> list[dict]:
    """``n_rooms`` independent rooms; room i depends only on (seed, i), so splits stay fixed as n grows."""
    if n_rooms < 1:
        raise ValueError(f"n_rooms must be >= 1, got {n_rooms}")
    return [make_room(np.random.default_rng([seed, i]), n_points, **kwargs) for i in range(n_rooms)]


def class_frequencies(rooms: list[dict], num_classes: int = len(S3DIS_CLASSES)) -> np.ndarray:
    counts = sum(np.bincount(r["segment"][r["segment"] >= 0], minlength=num_classes) for r in rooms)
    return counts / counts.sum()
