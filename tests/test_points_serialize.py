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
