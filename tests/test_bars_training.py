"""Issue 10, BARS fidelity in training: frozen pretrained tables in the shared embedding, the FuxiCTR-style
embedding regularizer, gAUC as the monitored metric, and splits helpers that keep the pretrained tables."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion import compare
from companion.data import bars
from companion.data.schema import CTRDataset, CTRSplits, Field, Schema
from companion.models import zoo
from companion.models.embedding import FeatureEmbedding, MissingPretrainedError, attach_pretrained
from companion.nas import warmup
from companion.train import TrainConfig, embedding_penalty, fit

from test_bars import _write
from test_loader_edge_cases import KUAI


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def kuai(tmp_path):
    """The KuaiVideo fixture with its visual vectors: item_emb (sparse) and two histories read a frozen 64-d table."""
    import h5py

    d = _write(tmp_path, "KuaiVideo_x1", KUAI, KUAI)
    rng = np.random.default_rng(0)
    with h5py.File(d / "item_visual_emb_dim64.h5", "w") as hf:
        hf.create_dataset("key", data=list(range(6)))
        hf.create_dataset("value", data=rng.normal(size=(6, 64)).astype(np.float32))
    return bars.load_bars("KuaiVideo_x1", root=tmp_path, valid_fraction=0, verify_md5=False)


# --- frozen pretrained tables -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [16, 64])  # a learned projection (64 -> 16), and the rows as they are (64 = 64)
def test_frozen_table_serves_its_fields_in_schema_order(kuai, dim):
    torch.manual_seed(0)
    emb = FeatureEmbedding(kuai.schema, dim, pretrained=kuai.pretrained)
    table = kuai.pretrained["item_emb"]
    b = kuai.train.batch(slice(0, 5))
    tok = emb.tokens(b)
    assert tok.shape == (5, 3, dim)  # user_id, item_id, item_emb
    proj = emb.frozen_proj["item_emb"]
    assert isinstance(proj, nn.Identity) == (dim == 64)
    with torch.no_grad():
        want = proj(table[b["sparse"][:, 2]])
        assert torch.allclose(tok[:, 2], want)
        assert torch.equal(tok[:, 0], emb.table.weight[b["sparse"][:, 0]])  # learned fields keep their rows
        seq, mask = emb.sequences(b)
        assert seq.shape == (5, 4, 100, dim)
        assert torch.allclose(seq[:, 2], proj(table[b["seq"][:, 2]]) * mask[:, 2].unsqueeze(-1))  # pos_items_emb
    # the frozen table is a buffer: no parameter, no checkpoint entry, and no rows of the learned table
    assert all(p.data_ptr() != table.data_ptr() for p in emb.parameters())
    assert FeatureEmbedding._buffer("item_emb") not in emb.state_dict() and "frozen_proj.item_emb.weight" in emb.state_dict() or dim == 64
    learned_rows = sum(f.vocab_size for f in kuai.schema.sparse if not f.pretrained)
    assert emb.table.weight.shape[0] == learned_rows


@pytest.mark.parametrize("name", ["DNN", "FM", "DIN", "InterFormer"])
def test_frozen_table_unchanged_by_training_while_the_rest_learns(kuai, name):
    torch.manual_seed(0)
    model = zoo.build_model(name, kuai.schema, 16, pretrained=kuai.pretrained)
    frozen = next(m for m in model.modules() if isinstance(m, FeatureEmbedding))
    buf = getattr(frozen, FeatureEmbedding._buffer("item_emb"))
    before_table = buf.clone()
    before_learned = frozen.table.weight.detach().clone()
    before_proj = frozen.frozen_proj["item_emb"].weight.detach().clone()
    fit(model, kuai, TrainConfig(epochs=2, batch_size=8, lr=1e-2, progress=False, embedding_regularizer=1e-2))
    assert torch.equal(buf, before_table) and torch.equal(kuai.pretrained["item_emb"], before_table)
    assert not torch.equal(frozen.table.weight, before_learned)
    assert not torch.equal(frozen.frozen_proj["item_emb"].weight, before_proj)
    # the model reads the frozen rows: other vectors give other predictions
    b = kuai.test.batch(slice(0, 8))
    model.eval()
    with torch.no_grad():
        p0 = model(b)
        buf.add_(1.0)
        assert not torch.allclose(p0, model(b))


def test_missing_table_names_the_field_and_the_table(kuai):
    with pytest.raises(MissingPretrainedError, match=r"field 'item_emb' reads the pretrained table 'item_emb'.*none"):
        zoo.build_model("DNN", kuai.schema, 16)
    with pytest.raises(MissingPretrainedError, match=r"'item_emb'.*\['other'\]"):
        zoo.build_model("DNN", kuai.schema, 16, pretrained={"other": torch.zeros(8, 4)})
    with pytest.raises(ValueError, match=r"pretrained table 'item_emb': expected a float \[vocab, d\].*\[8\]"):
        zoo.build_model("DNN", kuai.schema, 16, pretrained={"item_emb": torch.zeros(5, 64)})
    emb = FeatureEmbedding(kuai.schema, 16)  # built without tables (as InterFormer builds its own layer)
    with pytest.raises(MissingPretrainedError, match="'item_emb'.*never attached"):
        emb.tokens(kuai.train.batch(slice(0, 2)))
    raw = zoo.MODEL_ZOO["DNN"](kuai.schema, 16)  # a constructor that skipped build_model
    with pytest.raises(ValueError, match=r"field 'item_emb' reads the pretrained table 'item_emb'.*\['item_emb'\]"):
        fit(raw, kuai, TrainConfig(progress=False))
    attach_pretrained(raw, kuai.pretrained)
    fit(raw, kuai, TrainConfig(progress=False, max_steps=1))


def test_cap_train_and_warmup_keep_the_pretrained_tables(kuai):
    cut = compare.cap_train(kuai, 10, seed=0)
    assert len(cut.train) == 10 and cut.pretrained is kuai.pretrained and cut.info["gauc_group"] == kuai.info["gauc_group"]
    seen = {}

    def fake_train(supernet, sub, cfg, desc):
        seen["sub"] = sub

    import companion.nas.training as training
    orig = training.train_supernet
    training.train_supernet = fake_train
    try:
        warmup.warmup_supernet(None, kuai, 0.5)
    finally:
        training.train_supernet = orig
    assert seen["sub"].pretrained is kuai.pretrained and len(seen["sub"].train) == 20


def test_run_grid_passes_the_tables(kuai):
    df = compare.run_grid({"DNN": ("DNN", {})}, kuai, 8, [0], dict(epochs=1, batch_size=16, progress=False))
    assert len(df) == 1 and np.isfinite(df.auc[0])


# --- the embedding regularizer --------------------------------------------------------------------------------

def _tiny():
    schema = Schema([Field("a", "sparse", 3), Field("b", "sparse", 4), Field("h", "sequence", 3, 2, share_with="a")])
    emb = FeatureEmbedding(schema, 2)
    with torch.no_grad():
        emb.table.weight.copy_(torch.arange(14, dtype=torch.float32).view(7, 2))  # row r = [2r, 2r+1]
    return schema, emb


def test_regularizer_on_a_hand_case():
    schema, emb = _tiny()
    # rows: a in 0..2, b in 3..6, h shares a's rows; padding (0) positions of h are not read
    batch = {"dense": torch.zeros(2, 0), "sparse": torch.tensor([[1, 0], [1, 3]]), "seq": torch.tensor([[[0, 2]], [[0, 0]]]),
             "label": torch.zeros(2)}
    assert emb.used_rows(batch).tolist() == [1, 2, 3, 6]  # a=1 -> 1; b=0 -> 3, b=3 -> 6; h: 2 (its 0s are padding)
    sq = {r: (2 * r) ** 2 + (2 * r + 1) ** 2 for r in range(7)}
    lam = 0.1
    got = embedding_penalty(emb, batch, lam, "batch")
    assert got.item() == pytest.approx(lam / 2 * (sq[1] + sq[2] + sq[3] + sq[6]), rel=1e-6)  # 0.05 * (13 + 41 + 85 + 313)
    assert got.item() == pytest.approx(22.6, rel=1e-6)
    assert embedding_penalty(emb, batch, lam, "table").item() == pytest.approx(lam / 2 * sum(sq.values()), rel=1e-6)


class _Head(nn.Module):
    def __init__(self, schema):
        super().__init__()
        self.emb = FeatureEmbedding(schema, 2)
        self.w = nn.Linear(6, 1)

    def forward(self, b):
        x = torch.cat([self.emb.tokens(b).flatten(1), self.emb.pooled_sequences(b).flatten(1)], 1)
        return self.w(x).squeeze(-1)


@pytest.mark.parametrize("rows", ["table", "batch"])
def test_fit_adds_the_penalty_to_the_loss(rows):
    schema, _ = _tiny()
    g = torch.Generator().manual_seed(0)
    n = 16
    data = CTRDataset(torch.zeros(n, 0), torch.stack([torch.randint(0, 3, (n,), generator=g),
                                                      torch.randint(0, 4, (n,), generator=g)], 1),
                      torch.randint(0, 2, (n,), generator=g).float(), torch.randint(0, 3, (n, 1, 2), generator=g))
    splits = CTRSplits(schema, data, data, data)
    torch.manual_seed(0)
    model = _Head(schema)
    ref = copy.deepcopy(model)
    lam = 0.5
    fit(model, splits, TrainConfig(epochs=1, batch_size=n, lr=0.1, optimizer="adagrad", progress=False,
                                   embedding_regularizer=lam, embedding_regularizer_rows=rows))
    # the same step by hand: Adagrad on BCE + (lam/2)·Σ w² (the batch is every row, so its order does not matter)
    opt = torch.optim.Adagrad(ref.parameters(), lr=0.1)
    b = data.batch(slice(0, n))
    loss = F.binary_cross_entropy_with_logits(ref(b), b["label"])
    if rows == "table":
        loss = loss + lam / 2 * sum(p.pow(2).sum() for p in ref.emb.parameters())
    else:
        loss = loss + lam / 2 * ref.emb.table.weight[ref.emb.used_rows(b)].pow(2).sum()
    loss.backward()
    opt.step()
    for (k, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6), k
    plain = copy.deepcopy(ref)  # and the penalty moved the weights: without it the step differs
    assert not torch.allclose(model.emb.table.weight, _step_without_penalty(plain, data, n))


def _step_without_penalty(model, data, n):
    torch.manual_seed(0)
    m = _Head(model.emb.schema)
    opt = torch.optim.Adagrad(m.parameters(), lr=0.1)
    b = data.batch(slice(0, n))
    F.binary_cross_entropy_with_logits(m(b), b["label"]).backward()
    opt.step()
    return m.emb.table.weight


def test_regularizer_config_is_checked():
    with pytest.raises(ValueError, match="embedding_regularizer must be a number >= 0"):
        TrainConfig(embedding_regularizer=-1.0)
    with pytest.raises(ValueError, match="embedding_regularizer_rows must be one of"):
        TrainConfig(embedding_regularizer_rows="rows")
    with pytest.raises(ValueError, match="sparse embedding updates cannot take"):
        TrainConfig(embedding_regularizer=1e-3, embedding_optimizer="sparse_adam")
    TrainConfig(embedding_regularizer=1e-3, embedding_optimizer="sparse_adam", embedding_regularizer_rows="batch")


def test_batch_rows_penalty_with_sparse_updates():
    schema, _ = _tiny()
    n = 8
    g = torch.Generator().manual_seed(1)
    data = CTRDataset(torch.zeros(n, 0), torch.stack([torch.randint(0, 3, (n,), generator=g),
                                                      torch.randint(0, 4, (n,), generator=g)], 1),
                      torch.tensor([0, 1] * 4).float(), torch.randint(0, 3, (n, 1, 2), generator=g))
    torch.manual_seed(0)
    model = _Head(schema)
    before = model.emb.table.weight.detach().clone()
    fit(model, CTRSplits(schema, data, data, data),
        TrainConfig(epochs=1, batch_size=n, lr=0.1, progress=False, embedding_optimizer="sparse_adagrad",
                    embedding_regularizer=0.1, embedding_regularizer_rows="batch"))
    used = set(model.emb.used_rows(data.batch(slice(0, n))).tolist())
    moved = {r for r in range(7) if not torch.equal(model.emb.table.weight[r], before[r])}
    assert moved == used  # only the rows the batch read were touched


# --- gAUC as the monitored metric -----------------------------------------------------------------------------

class _Scripted(nn.Module):
    """Trains a throwaway weight; scores validation row i after epoch k as SCORES[k - 1][i]. The epoch counter is
    a buffer, so restoring the best weights restores that epoch's scores."""

    SCORES = torch.tensor([
        [0.8, 0.8, 0.8, 0.9, 0.1, 0.2, 0.2, 0.2],  # epoch 1: AUC 9/16, every group reversed (gAUC 0)
        [0.2, 0.2, 0.2, 0.1, 0.9, 0.8, 0.8, 0.8],  # epoch 2: AUC 7/16, every group right (gAUC 1)
        [0.5] * 8,                                  # epoch 3: AUC 0.5, gAUC 0.5
    ])

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def forward(self, b):
        if self.training:
            self.epoch += 1
            return self.w * b["dense"][:, 0]
        return torch.logit(self.SCORES[int(self.epoch) - 1][b["dense"][:, 0].long()])


def _scripted_splits():
    y = torch.tensor([1, 1, 1, 0, 1, 0, 0, 0]).float()  # group 0: three clicks of four; group 1: one of four
    valid = CTRDataset(torch.arange(8).float().view(8, 1), torch.zeros(8, 0, dtype=torch.long), y,
                       group=torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    train = CTRDataset(torch.ones(4, 1), torch.zeros(4, 0, dtype=torch.long), torch.tensor([1.0, 0, 1, 0]))
    return CTRSplits(Schema([Field("x", "dense")]), train, valid, valid)


@pytest.mark.parametrize("monitor, best, gauc", [("auc", 1, 0.0), ("gAUC", 2, 1.0), ("gauc", 2, 1.0)])
def test_gauc_monitor_picks_the_best_gauc_epoch(monitor, best, gauc):
    res = fit(_Scripted(), _scripted_splits(), TrainConfig(epochs=3, batch_size=4, patience=3, progress=False,
                                                           monitor=monitor))
    assert [round(r["valid_auc"], 4) for r in res.history] == [0.5625, 0.4375, 0.5]
    assert [r["valid_gauc"] for r in res.history] == [0.0, 1.0, 0.5]
    assert res.best_epoch == best and res.valid["gauc"] == gauc  # the kept weights are that epoch's


def test_gauc_monitor_needs_groups():
    sp = _scripted_splits()
    sp.valid = CTRDataset(sp.valid.dense, sp.valid.sparse, sp.valid.label)
    with pytest.raises(ValueError, match="monitor='gauc' needs group ids"):
        fit(_Scripted(), sp, TrainConfig(monitor="gauc", progress=False))


# --- the notebook's paper preset takes the BARS recipe -------------------------------------------------------

def _interformer_presets(dataset: str) -> dict:
    """01_interformer's PRESETS for ``dataset``: its imports and assignments up to the table, nothing after it
    (no data, no training)."""
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "notebooks" / "src" / "01_interformer.py"
    ns: dict = {"__file__": str(src)}
    for node in ast.parse(src.read_text()).body:
        if not isinstance(node, (ast.Assign, ast.Import, ast.ImportFrom)):
            continue
        exec(compile(ast.Module([node], []), str(src), "exec"), ns)
        target = getattr(node.targets[0], "id", None) if isinstance(node, ast.Assign) else None
        if target == "dataset":
            ns["dataset"] = dataset
        if target == "PRESETS":
            return ns
    raise AssertionError("no PRESETS in 01_interformer")


@pytest.mark.parametrize("dataset, name", [("amazon", "AmazonElectronics_x1"), ("taobao", "TaobaoAd_x1"),
                                           ("kuaivideo", "KuaiVideo_x1")])
def test_interformer_paper_preset_takes_the_bars_recipe(dataset, name):
    from companion import params

    ns = _interformer_presets(dataset)
    recipe, own = bars.BARS_RECIPES[name], ns["PAPER_OWN"]
    P = params.resolve(ns["PRESETS"], "paper", ns, show=False)
    want = {"dim": recipe["embedding_dim"], "batch_size": recipe["batch_size"],
            "embedding_regularizer": recipe["embedding_regularizer"], "monitor": recipe["monitor"].lower()}
    for k, v in want.items():
        assert getattr(P, k) == (own[k] if v is None else v), k
    assert P.monitor == "gauc" and ns["RECIPE_FALLBACKS"] == sorted(k for k, v in want.items() if v is None)
    if name == "AmazonElectronics_x1":  # the one recipe with every value: nothing falls back
        assert (P.dim, P.batch_size, P.embedding_regularizer) == (64, 1024, 5e-3) and not ns["RECIPE_FALLBACKS"]
    # the scales that run here never see the recipe
    ml = _interformer_presets("movielens")
    for scale in ("quick", "laptop"):
        assert ns["PRESETS"][scale] == ml["PRESETS"][scale]
        assert ml["PRESETS"][scale]["embedding_regularizer"] == 0.0 and ml["PRESETS"][scale]["monitor"] == "auc"
    assert {k: ml["PRESETS"]["paper"][k] for k in own} == own  # MovieLens has no recipe: the notebook's own values
    TrainConfig(**{k: getattr(P, k) for k in ("batch_size", "embedding_regularizer", "monitor")})
