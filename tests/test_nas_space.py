import numpy as np
import pytest

from companion.nas import Arch, BlockChoice, distance, make_space, nasrec_full, nasrec_small
from companion.nas.space import BINARY_DENSE_OPS


@pytest.fixture(params=["nasrec-small", "nasrec-full"])
def space(request):
    return make_space(request.param, "tiny")


def test_sampled_archs_are_valid_and_canonical(space):
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = space.validate(space.sample(rng))
        for i, b in enumerate(a.blocks):
            if b.dense_op in BINARY_DENSE_OPS:
                assert b.dense_in == () and 0 <= b.left <= i and 0 <= b.right <= i
            else:
                assert b.left == b.right == -1 and b.dense_in
            assert b.sparse_in and max(b.sparse_in) <= i


def test_encoding_and_json_round_trip(space):
    rng = np.random.default_rng(1)
    for _ in range(100):
        a = space.sample(rng)
        code = space.encode(a)
        assert code.shape == (space.encoding_len,)
        assert np.all(code < space.cardinalities())
        assert space.decode(code) == a
        assert Arch.from_json(a.to_json()) == a
        assert Arch.from_json(a.to_json()).key() == a.key()


def test_key_and_distance_separate_different_archs(space):
    rng = np.random.default_rng(2)
    a = space.sample(rng)
    b = space.mutate(a, rng)
    assert b != a and b.key() != a.key()
    assert distance(space, a, a) == 0
    assert distance(space, a, b) > 0
    assert distance(space, a, b) == distance(space, b, a)


def test_mutation_changes_exactly_one_block():
    space = make_space("nasrec-full", "tiny")
    rng = np.random.default_rng(3)
    for _ in range(100):
        a = space.sample(rng)
        b = space.validate(space.mutate(a, rng))
        assert sum(x != y for x, y in zip(a.blocks, b.blocks)) == 1


def test_small_space_only_has_its_operators():
    s = nasrec_small()
    assert s.dense_ops == ("fc", "dot") and s.sparse_ops == ("efc",)
    rng = np.random.default_rng(4)
    ops = {(b.dense_op, b.sparse_op) for _ in range(50) for b in s.sample(rng).blocks}
    assert {d for d, _ in ops} == {"fc", "dot"} and {sp for _, sp in ops} == {"efc"}
    assert nasrec_full().dense_ops == ("fc", "gating", "sum", "dot")


def test_validate_names_the_problem():
    space = make_space("nasrec-full", "tiny")
    a = space.sample(0)
    bad = Arch((BlockChoice("fc", "efc", 999, 4, dense_in=(0,), sparse_in=(0,)),) + a.blocks[1:])
    with pytest.raises(ValueError, match="block 0: dense_dim 999"):
        space.validate(bad)
    bad = Arch(a.blocks[:1] + (BlockChoice("fc", "efc", 8, 4, dense_in=(0, 5), sparse_in=(0,)),) + a.blocks[2:])
    with pytest.raises(ValueError, match="block 1: dense_in"):
        space.validate(bad)
    with pytest.raises(ValueError, match="unknown search space"):
        make_space("nasrec-huge")
    with pytest.raises(ValueError, match="unknown operators"):
        make_space("nasrec-full", dense_ops=("fc", "conv"))


def test_connection_cap_and_entropy_bound():
    space = make_space("nasrec-full", "tiny", num_blocks=6, max_sources=2)
    rng = np.random.default_rng(5)
    for _ in range(100):
        for b in space.sample(rng).blocks:
            assert len(b.sparse_in) <= 2 and len(b.dense_in) <= 2
    # the entropy of many uniform samples approaches but never exceeds the space maximum
    from companion.nas.fgps import set_entropy

    codes = space.encode_many([space.sample(rng) for _ in range(2000)])
    assert set_entropy(codes) <= space.max_entropy() + 1e-9
    assert set_entropy(codes) > 0.7 * space.max_entropy()


def test_encoding_is_nasrecs_280_position_tokenizer():
    full = nasrec_full()
    assert (full.encoding_len, full.block_encoding_len) == (280, 28 + 6 + 2 + 4)
    assert make_space("nasrec-full", "tiny").encoding_len == 4 * (16 + 6 + 2 + 4)
    assert nasrec_small().encoding_len == 7 * (28 + 3 + 2 + 4)
    assert len(full.encoding_fields()) == 280 and full.encoding_fields()[:2] == [(0, "dense_in", 0), (0, "dense_in", 1)]
    # the paper's example: block 4 (our index 3) reads the raw input and blocks 1 and 3 -> "1101000"
    a = full.sample(0)
    b3 = BlockChoice("fc", "attn", 64, 32, dense_in=(0, 1, 3), sparse_in=(2,))
    a = Arch(a.blocks[:3] + (b3,) + a.blocks[4:])
    code = full.encode(a)
    o = 4 * 7 * 3
    assert "".join(map(str, code[o:o + 7])) == "1101000"
    assert "".join(map(str, code[o + 7:o + 14])) == "0010000" and code[o + 14:o + 28].sum() == 0  # no left/right
    m = full.macro_len + 3 * full.micro_block_len
    assert code[m:m + 6].tolist() == [1, 0, 0, 0, 0, 1]  # fc of (fc, gating, sum, dot); attn of (efc, attn)
    assert code[m + 6:m + 8].tolist() == [full.dense_dims.index(64), full.sparse_dims.index(32)]
    assert code[m + 8:m + 12].tolist() == [1, 0, 1, 0]  # no merger: both one-hot pairs at "off"


def test_hamming_distances_on_hand_made_paths():
    space = nasrec_full()
    base = BlockChoice("fc", "efc", 64, 32, dense_in=(0, 1), sparse_in=(1,))
    a = Arch(space.sample(1).blocks[:2] + (base,) + space.sample(1).blocks[3:])

    def with_block(**kw):
        from dataclasses import replace

        return Arch(a.blocks[:2] + (replace(base, **kw),) + a.blocks[3:])

    assert distance(space, a, with_block(dense_dim=128)) == 1  # one width index
    assert distance(space, a, with_block(sparse_op="attn")) == 2  # two operator bits
    assert distance(space, a, with_block(dense_to_sparse=True)) == 2  # a one-hot pair flips both positions
    assert distance(space, a, with_block(sparse_in=(0, 1, 2))) == 2  # two more source bits
    # fc(d[0,1]) -> sum(L0, R1): two dense bits off, one left and one right bit on, two operator bits
    assert distance(space, a, with_block(dense_op="sum", dense_in=(), left=0, right=1)) == 6


def test_exact_count_of_the_tiny_space_by_hand_and_by_enumeration():
    """Tiny NASRec-Full: 4 blocks; block i has n = i+1 sources and 2^n - 1 source subsets (the cap of 4 never binds);
    FC and Dot read a subset, Gating and Sum an ordered (left, right) pair; times the sparse subset, 2 sparse ops,
    3 dense widths, 2 token counts and 4 merger settings."""
    space = make_space("nasrec-full", "tiny")
    by_hand = [(2 * 1 + 2 * 1) * 1 * 48, (2 * 3 + 2 * 4) * 3 * 48, (2 * 7 + 2 * 9) * 7 * 48, (2 * 15 + 2 * 16) * 15 * 48]
    assert by_hand == [192, 2016, 10752, 44640]
    assert [space.block_count(i) for i in range(4)] == by_hand
    assert space.size() == 192 * 2016 * 10752 * 44640 == 185_782_669_148_160
    # enumerate every block choice, keep the valid ones, and check the encoding tells them all apart
    import itertools

    base = space.sample(0)
    for i in range(3):
        n = i + 1
        subsets = [tuple(c) for k in range(1, n + 1) for c in itertools.combinations(range(n), k)]
        seen = set()
        for op, sop, dd, sd, ds, fm in itertools.product(space.dense_ops, space.sparse_ops, space.dense_dims,
                                                         space.sparse_dims, (False, True), (False, True)):
            wirings = ([((), L, R) for L in range(n) for R in range(n)] if op in BINARY_DENSE_OPS
                       else [(s, -1, -1) for s in subsets])
            for (din, L, R), sin in itertools.product(wirings, subsets):
                b = BlockChoice(op, sop, dd, sd, din, sin, L, R, ds, fm)
                arch = space.validate(Arch(base.blocks[:i] + (b,) + base.blocks[i + 1:]))
                seen.add(space.encode(arch).tobytes())
        assert len(seen) == by_hand[i]


def test_max_entropy_counts_reachable_symbols_only():
    # tiny Full: 4 masks x (1 + 2 + 3 + 4) source bits, less block 0's sparse bit (always the stem) = 39 binary
    # positions; per block 6 operator bits + 4 merger bits binary, widths of 3 and 2 choices
    tiny = make_space("nasrec-full", "tiny")
    assert tiny.max_entropy() == pytest.approx(39 * np.log(2) + 4 * (11 * np.log(2) + np.log(3)))
    # NASRec-Full at paper size: 111 source bits, 7 x (10 binary + log 8 + log 4)
    assert nasrec_full().max_entropy() == pytest.approx(111 * np.log(2) + 7 * (10 * np.log(2) + np.log(8) + np.log(4)))
    # NASRec-Small has one sparse operator: its bit is constant and adds nothing
    small = make_space("nasrec-small", "tiny")
    assert small.max_entropy() == pytest.approx(39 * np.log(2) + 4 * (6 * np.log(2) + np.log(3) + np.log(2)))


def test_decode_rejects_codes_outside_the_space():
    space = make_space("nasrec-full", "tiny")
    code = space.encode(space.sample(3))
    bad = code.copy()
    m = space.macro_len
    bad[m:m + space.n_ops] = 0
    with pytest.raises(ValueError, match="exactly one dense and one sparse"):
        space.decode(bad)
    bad = code.copy()
    bad[m + space.n_ops + 2: m + space.n_ops + 4] = 1
    with pytest.raises(ValueError, match="one-hot"):
        space.decode(bad)
