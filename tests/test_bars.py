import numpy as np
import pytest
import torch

from companion.data.bars import BARS_SPECS, load_bars
from companion.data.errors import DataFormatError, MissingDataError

AMAZON_TRAIN = """label,user_id,item_id,cate_id,item_history,cate_history
1,u1,i3,c1,i1^i2,c1^c2
0,u1,i4,c2,i1^i2^i3,c1^c2^c1
1,u2,i1,c1,i5,c3
0,u2,i2,c2,,
1,u3,i9,c9,i1^i2^i3^i4^i5^i1,c1^c2^c1^c2^c3^c1
"""
AMAZON_TEST = """label,user_id,item_id,cate_id,item_history,cate_history
1,u1,i5,c3,i1^i2^i3^i4,c1^c2^c1^c2
0,u4,i7,c7,i7,c7
"""


def _write(root, name, train, test):
    d = root / name
    d.mkdir(parents=True)
    (d / "train.csv").write_text(train)
    (d / "test.csv").write_text(test)
    return d


def test_amazon_format(tmp_path):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    sp = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, cache=False, verify_md5=False)
    names = [f.name for f in sp.schema.fields]
    assert names == ["item_id", "cate_id", "item_history", "cate_history"]  # user_id is meta (gAUC groups only)
    assert len(sp.train) == 5 and len(sp.test) == 2 and sp.valid is sp.test
    assert sp.train.label.tolist() == [1, 0, 1, 0, 1]
    seq = sp.train.seq
    assert seq.shape == (5, 2, 100)
    # the history shares the target's vocabulary: item i3 as a target and inside a history get the same id
    item_i3 = int(sp.train.sparse[0, 0])
    assert int(seq[1, 0, -1]) == item_i3
    # pre-padding, oldest first, and an empty history is all padding
    assert (seq[0, 0, :-2] == 0).all() and (seq[0, 0, -2:] > 1).all()
    assert (seq[3] == 0).all()
    # unseen test categories map to the out-of-vocabulary id 1
    assert int(sp.test.sparse[1, 0]) == 1 and int(sp.test.sparse[1, 1]) == 1  # i7, c7
    # groups are users; the two u1 rows share a group
    assert sp.train.group[0] == sp.train.group[1] != sp.train.group[2]


def test_truncation_keeps_the_latest_events(tmp_path, monkeypatch):
    from companion.data import bars

    spec = bars.BARS_SPECS["AmazonElectronics_x1"]
    short = bars.BarsSpec(spec.name, spec.label, spec.categorical, spec.numeric,
                          (bars.SeqCol("item_history", "item_id", 3), bars.SeqCol("cate_history", "cate_id", 3)),
                          spec.group, spec.min_count)
    monkeypatch.setitem(bars.BARS_SPECS, "AmazonElectronics_x1", short)
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    sp = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, cache=False, verify_md5=False)
    row = sp.train.seq[4, 0]  # i1^i2^i3^i4^i5^i1 -> the last three: i4, i5, i1
    ids = {tok: int(i) for tok, i in zip(["i1", "i4", "i5"], [sp.train.seq[0, 0, -2], sp.test.seq[0, 0, -1], sp.train.seq[2, 0, -1]])}
    assert row.tolist() == [ids["i4"], ids["i5"], ids["i1"]]


def test_taobao_format_with_min_count_and_numeric(tmp_path):
    spec = BARS_SPECS["TaobaoAd_x1"]
    cols = [spec.label, *spec.categorical, *spec.numeric, "cate_his", "brand_his", "btag_his"]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        vals = {c: f"{c}{rng.integers(0, 3)}" for c in spec.categorical}
        vals["userid"] = f"u{i % 4}"
        vals["brand"] = "rare" if i == 0 else "b1"
        rows.append(",".join([str(i % 2), *[vals[c] for c in spec.categorical], str(10.0 + i), "cate_id1^cate_id2",
                              "b1^rare" if i == 0 else "b1", "btag0^btag1"]))
    text = ",".join(cols) + "\n" + "\n".join(rows) + "\n"
    _write(tmp_path, "TaobaoAd_x1", text, text)
    sp = load_bars("TaobaoAd_x1", root=tmp_path, valid_fraction=0.2, seed=0, cache=False, verify_md5=False)
    assert len(sp.train) + len(sp.valid) == 30 and len(sp.valid) == 6
    assert sp.schema.dense[0].name == "price" and sp.train.dense.shape[1] == 1
    assert abs(float(torch.cat([sp.train.dense, sp.valid.dense]).mean())) < 1e-5  # standardized on train
    brand = [f.name for f in sp.schema.sparse].index("brand")
    assert int(sp.test.sparse[0, brand]) == 1  # seen twice (< min_count 10): out of vocabulary
    assert sp.train.seq.shape[1:] == (3, 50)


def test_kuaivideo_format_ignores_extra_columns(tmp_path):
    text = ("index,user_id,item_id,is_click,is_like,is_follow,pos_items,neg_items\n"
            + "\n".join(f"{i},u{i % 3},v{i % 5},{i % 2},0,0,v1^v2,v3" for i in range(40)) + "\n")
    _write(tmp_path, "KuaiVideo_x1", text, text)
    sp = load_bars("KuaiVideo_x1", root=tmp_path, valid_fraction=0, cache=False, verify_md5=False)
    assert [f.name for f in sp.schema.sequence] == ["pos_items", "neg_items"]
    assert sp.schema["pos_items"].share_with == "item_id"
    assert sp.train.seq.shape == (40, 2, 100)


def test_malformed_label_names_file_and_line(tmp_path):
    bad = AMAZON_TRAIN.replace("0,u2,i2", "yes,u2,i2")
    _write(tmp_path, "AmazonElectronics_x1", bad, AMAZON_TEST)
    with pytest.raises(DataFormatError, match=r"train\.csv:5: label"):
        load_bars("AmazonElectronics_x1", root=tmp_path, cache=False, verify_md5=False)


def test_missing_column_and_missing_files(tmp_path):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN.replace("cate_history", "cats"), AMAZON_TEST)
    with pytest.raises(DataFormatError, match="cate_history"):
        load_bars("AmazonElectronics_x1", root=tmp_path, cache=False, verify_md5=False)
    with pytest.raises(MissingDataError, match="huggingface.co/datasets/reczoo/KuaiVideo_x1"):
        load_bars("KuaiVideo_x1", root=tmp_path)
    with pytest.raises(ValueError, match="unknown BARS"):
        load_bars("Criteo_x9", root=tmp_path)


def test_ragged_row_is_reported(tmp_path):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN + "1,u9,i1,c1,i1,c1,extra,fields\n", AMAZON_TEST)
    with pytest.raises(DataFormatError, match="train.csv"):
        load_bars("AmazonElectronics_x1", root=tmp_path, cache=False, verify_md5=False)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    a = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    b = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    assert torch.equal(a.train.seq, b.train.seq) and list((tmp_path / "cache" / "bars_columns").iterdir())


def test_short_row_is_reported(tmp_path):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN + "1,u9,i1\n", AMAZON_TEST)
    with pytest.raises(DataFormatError, match=r"train\.csv:7: expected 6 fields, found 3"):
        load_bars("AmazonElectronics_x1", root=tmp_path, cache=False, verify_md5=False)
