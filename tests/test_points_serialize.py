import pytest
import torch

from companion.points import (ORDERS, encode, farthest_point_sample, grid_neighbours, grid_pool_index, grid_sample,
                              grid_unpool, hilbert_encode, hilbert_encode_skilling, make_patches, random_sample,
                              segment_reduce, serialize, shift_serialization, z_order_decode, z_order_encode,
                              z_order_encode_reference)


def full_grid(depth):
    ax = torch.arange(1 << depth)
    return torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_codes_are_a_bijection_on_the_grid(order, depth):
    codes = encode(full_grid(depth), order, depth)
    assert torch.equal(codes.sort().values, torch.arange(8 ** depth))


@pytest.mark.parametrize("order", ["hilbert", "hilbert-trans"])
def test_hilbert_neighbours_are_adjacent_cells(order):
    g = full_grid(4)
    o = encode(g, order, 4).argsort()
    step = (g[o][1:] - g[o][:-1]).abs().sum(1)
    assert torch.all(step == 1)


def test_z_order_is_not_continuous_but_decodes():
    g = full_grid(3)
    o = z_order_encode(g, 3).argsort()
    assert (g[o][1:] - g[o][:-1]).abs().sum(1).max() > 1  # z-order jumps; Hilbert does not
    assert torch.equal(z_order_decode(z_order_encode(g)), g)


@pytest.mark.parametrize("depth", [1, 3, 7, 10, 16])
def test_fast_encoders_match_references(depth):
    g = torch.randint(0, 1 << depth, (5000, 3), generator=torch.Generator().manual_seed(depth))
    assert torch.equal(hilbert_encode(g, depth), hilbert_encode_skilling(g, depth))
    assert torch.equal(hilbert_encode(g, depth, levels_per_step=2), hilbert_encode_skilling(g, depth))
    assert torch.equal(z_order_encode(g, depth), z_order_encode_reference(g, depth))


@pytest.mark.parametrize("order", ORDERS)
def test_parent_cell_is_code_shift(order):
    g = full_grid(3)
    assert torch.equal(encode(g >> 1, order, 2), encode(g, order, 3) >> 3)


def test_trans_swaps_x_and_y():
    g = torch.randint(0, 64, (200, 3))
    assert torch.equal(encode(g, "z-trans"), encode(g[:, [1, 0, 2]], "z"))
    assert not torch.equal(encode(g, "hilbert-trans"), encode(g, "hilbert"))


def test_serialize_orders_inverses_and_batches():
    g = torch.randint(0, 50, (300, 3))
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([100, 120, 80]))
    s = serialize(g, batch)
    for k in range(len(ORDERS)):
        assert torch.equal(s.order[k][s.inverse[k]], torch.arange(300))
        assert torch.all(batch[s.order[k]].diff() >= 0)  # scenes stay contiguous and in order
    sh = s.shuffled(torch.Generator().manual_seed(1))
    assert sorted(sh.names) == sorted(ORDERS)
    k = sh.names.index("hilbert")
    assert torch.equal(sh.order[k], s.order[s.names.index("hilbert")])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown serialization order"):
        encode(torch.zeros(3, 3, dtype=torch.long), "peano")
    with pytest.raises(ValueError, match="non-negative"):
        z_order_encode(torch.tensor([[-1, 0, 0]]))
    with pytest.raises(ValueError, match="at most 16"):
        hilbert_encode(torch.tensor([[1 << 17, 0, 0]]))
    with pytest.raises(TypeError, match="integers"):
        z_order_encode(torch.zeros(3, 3))


def test_patches_follow_ptv3_padding_rule():
    counts = torch.tensor([10, 3, 4])
    p = make_patches(counts, 4)
    assert p.index.shape == (3 + 1 + 1, 4)
    # scene 0 (10 points): last patch holds points 8, 9 then re-uses 6, 7 from the patch before it
    assert p.index[2].tolist() == [8, 9, 6, 7] and p.valid[2].all()
    # scene 1 (3 points, shorter than a patch): one patch with a masked filler slot
    assert p.index[3, :3].tolist() == [10, 11, 12] and p.valid[3].tolist() == [True, True, True, False]
    assert p.index[4].tolist() == [13, 14, 15, 16]
    # unpad picks exactly one slot per point, and it holds that point
    assert torch.equal(p.index.flatten()[p.unpad], torch.arange(17))
    g = make_patches(counts, None)
    assert g.size == 10 and g.index.shape == (3, 10)


def test_grid_pool_unpool_round_trip():
    gen = torch.Generator().manual_seed(0)
    g = torch.randint(0, 16, (500, 3), generator=gen)
    g = torch.unique(g, dim=0)
    s = serialize(g, None, ("hilbert",))
    pool = grid_pool_index(s.code[0])
    parents = g >> 1
    # cells found by code shift are exactly the parent cells
    assert len(pool.head) == len(torch.unique(parents, dim=0))
    assert torch.equal(parents, parents[pool.head][pool.cluster])
    # unpooling a pooled per-cell constant returns it to every point
    cell_value = torch.randn(len(pool.head), 4, generator=gen)
    fine = grid_unpool(cell_value, pool)
    assert torch.equal(segment_reduce(fine, pool.cluster, len(pool.head), "amax"), cell_value)
    assert torch.allclose(segment_reduce(fine, pool.cluster, len(pool.head), "mean"), cell_value)
    # pooled codes equal the codes of the parent grid
    coarse = shift_serialization(s)
    assert torch.equal(coarse.code[0][pool.head], hilbert_encode(parents[pool.head], s.depth - 1))


def test_grid_neighbours_find_adjacent_cells():
    g = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 1], [5, 5, 5], [0, 0, 0]])
    b = torch.tensor([0, 0, 0, 0, 1])
    nbr = grid_neighbours(g, b, 3)
    centre = 13
    assert torch.equal(nbr[:, centre], torch.arange(5))
    assert set(nbr[0][nbr[0] >= 0].tolist()) == {0, 1, 2}
    assert set(nbr[3][nbr[3] >= 0].tolist()) == {3}
    assert set(nbr[4][nbr[4] >= 0].tolist()) == {4}  # other scene's points are not neighbours
    with pytest.raises(ValueError, match="share a grid cell"):
        grid_neighbours(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long))


def test_samplers():
    gen = torch.Generator().manual_seed(0)
    c = torch.rand(2000, 3, generator=gen)
    gs = grid_sample(c, 0.25)
    assert len(gs.keep) == len(torch.unique(gs.grid, dim=0)) <= 64
    assert torch.equal(gs.grid[gs.voxel], torch.floor((c - c.min(0).values) / 0.25).long())
    gs2 = grid_sample(c, 0.25, generator=gen)
    assert torch.equal(gs2.grid, gs.grid) and not torch.equal(gs2.keep, gs.keep)
    idx = farthest_point_sample(c, 8)
    assert len(set(idx.tolist())) == 8
    d_fps = torch.cdist(c[idx], c[idx]).add(torch.eye(8) * 9).min()
    d_rand = torch.cdist(c[:8], c[:8]).add(torch.eye(8) * 9).min()
    assert d_fps > d_rand  # FPS spreads the picks out
    r = random_sample(2000, 100, gen)
    assert len(torch.unique(r)) == 100
    with pytest.raises(ValueError, match="grid_size"):
        grid_sample(c, 0)


# ------------------------------------------------------------------ Pointcept's definition, written independently
def pointcept_depth(grid: torch.Tensor) -> int:
    """Pointcept's ``Point.serialization``: the cube's depth is the bit length of (largest grid coordinate + 1)."""
    return (int(grid.max()) + 1).bit_length()


def pointcept_z(point, depth):
    """Morton code as Pointcept's z-order defines it: bit i of x, y, z at bits 3i+2, 3i+1, 3i."""
    x, y, z = (int(c) for c in point)
    return sum((((x >> i) & 1) << (3 * i + 2)) | (((y >> i) & 1) << (3 * i + 1)) | (((z >> i) & 1) << (3 * i))
               for i in range(depth))


def pointcept_hilbert(point, depth):
    """Hilbert index as Pointcept computes it (Skilling's transform on bit arrays, most significant bit first):
    for each bit level and axis, invert axis 0's lower bits where this axis's bit is set, else swap them with
    this axis's; then interleave level by level (x, y, z) and undo the Gray code by a running xor."""
    bits = [[(int(c) >> (depth - 1 - j)) & 1 for j in range(depth)] for c in point]
    for level in range(depth):
        for axis in range(3):
            if bits[axis][level]:
                for j in range(level + 1, depth):
                    bits[0][j] ^= 1
            else:
                for j in range(level + 1, depth):
                    bits[0][j], bits[axis][j] = bits[axis][j], bits[0][j]
    code, acc = 0, 0
    for b in (bits[axis][j] for j in range(depth) for axis in range(3)):
        acc ^= b
        code = (code << 1) | acc
    return code


def pointcept_codes(grid, batch, order):
    depth = pointcept_depth(grid)
    g = grid[:, [1, 0, 2]] if order.endswith("-trans") else grid
    fn = pointcept_z if order.startswith("z") else pointcept_hilbert
    return torch.tensor([fn(p, depth) | (int(b) << (3 * depth)) for p, b in zip(g.tolist(), batch.tolist())])


def boundary_grids():
    gen = torch.Generator().manual_seed(7)
    cases = {"single point at the origin": torch.zeros(1, 3, dtype=torch.long),
             "all coordinates 0": torch.zeros(5, 3, dtype=torch.long),
             "single point (5, 2, 7)": torch.tensor([[5, 2, 7]])}
    for k in (1, 2, 3, 4, 6):
        for top in (2 ** k - 1, 2 ** k):
            g = torch.randint(0, top + 1, (60, 3), generator=gen)
            g[0] = torch.tensor([top, 0, top // 2])  # the maximum is reached on one axis
            cases[f"max {top}"] = g
    return cases


@pytest.mark.parametrize("name,grid", list(boundary_grids().items()))
def test_codes_and_depth_match_pointcept_definition(name, grid):
    batch = torch.zeros(len(grid), dtype=torch.long)
    batch[len(grid) // 2:] = 1
    s = serialize(grid, batch, ORDERS)
    assert s.depth == pointcept_depth(grid), name
    for k, order in enumerate(ORDERS):
        assert torch.equal(s.code[k], pointcept_codes(grid, batch, order)), (name, order)


def test_old_depth_rule_gives_other_hilbert_orders_at_2k_minus_1():
    """With the largest coordinate 2^k - 1, bit_length(max) is one bit short of Pointcept's depth: z-order is the
    same (leading zeros), the Hilbert order is not, so the test above could fail on the old rule."""
    g = full_grid(2)  # coordinates 0..3
    assert pointcept_depth(g) == 3
    ours_old = hilbert_encode(g, 2)
    batch = torch.zeros(len(g), dtype=torch.long)
    ref = pointcept_codes(g, batch, "hilbert")
    assert not torch.equal(ours_old.argsort(), ref.argsort())
    assert torch.equal(z_order_encode(g, 2).argsort(), pointcept_codes(g, batch, "z").argsort())
    assert torch.equal(hilbert_encode(g), ref)  # the default depth is Pointcept's


def test_explicit_depth_still_allows_the_tightest_cube():
    g = torch.tensor([[3, 0, 1]])
    assert torch.equal(hilbert_encode(g, 2), hilbert_encode_skilling(g, 2))
    with pytest.raises(ValueError, match="cannot hold"):
        hilbert_encode(g, 1)
    with pytest.raises(ValueError, match="at most 16"):
        serialize(torch.tensor([[65535, 0, 0]]))  # Pointcept's rule needs 17 bits here, as its assert does
