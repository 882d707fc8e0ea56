import math

import pytest
import torch

from companion import train
from companion.data.synthetic import make_synthetic_ctr
from companion.models.basic import CrossedLR, LogisticRegression
from companion.runtime import seed_everything


@pytest.fixture(scope="module")
def data():
    return make_synthetic_ctr(12000, n_dense=2, n_sparse=6, vocab_size=12, n_pairs=2, n_triples=0, seed=3)


def _fit(model_fn, data, **kw):
    seed_everything(0)
    cfg = train.TrainConfig(**{"epochs": 3, "batch_size": 256, "lr": 0.02, "progress": False, **kw})
    return train.fit(model_fn(), data, cfg)


def test_generator_is_deterministic_and_hits_target_ctr():
    a = make_synthetic_ctr(3000, seed=5, target_ctr=0.3)
    b = make_synthetic_ctr(3000, seed=5, target_ctr=0.3)
    assert torch.equal(a.train.sparse, b.train.sparse) and torch.equal(a.test.label, b.test.label)
    assert a.info["ground_truth"].pairs == b.info["ground_truth"].pairs
    assert abs(float(a.info["true_prob"].mean()) - 0.3) < 0.01
    assert make_synthetic_ctr(3000, seed=6).info["ground_truth"].pairs != a.info["ground_truth"].pairs or \
        not torch.equal(make_synthetic_ctr(3000, seed=6).train.sparse, a.train.sparse)


def test_planted_interaction_is_learnable(data):
    truth = data.info["ground_truth"]
    planted = [p for p in truth.pairs if p[0].startswith("C")]
    names = [f.name for f in data.schema.sparse]
    wrong = [(a, b) for a in names for b in names if a < b and (a, b) not in truth.pairs][: len(planted)]
    lr = _fit(lambda: LogisticRegression(data.schema), data).test["auc"]
    good = _fit(lambda: CrossedLR(data.schema, planted), data).test["auc"]
    bad = _fit(lambda: CrossedLR(data.schema, wrong), data).test["auc"]
    assert good > lr + 0.02, (good, lr)
    assert good > bad + 0.02, (good, bad)
    assert good <= truth.bayes_test["auc"] + 0.02


def test_training_is_deterministic_with_a_seed(data):
    a = _fit(lambda: LogisticRegression(data.schema), data)
    b = _fit(lambda: LogisticRegression(data.schema), data)
    assert a.test == b.test and a.history == b.history
    assert a.samples_per_s > 0 and a.steps > 0


def test_nan_loss_stops_with_a_clear_error(data):
    bad = make_synthetic_ctr(500, n_dense=2, n_sparse=3, vocab_size=5, n_pairs=1, n_triples=0, seed=1)
    bad.train.dense[7, 0] = float("nan")
    with pytest.raises(train.NonFiniteLossError, match="loss became nan"):
        _fit(lambda: LogisticRegression(bad.schema), bad)


@pytest.mark.parametrize("epochs", [0, -1])
def test_non_positive_epochs_are_rejected(epochs):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.TrainConfig(epochs=epochs)


def test_early_stopping_keeps_best_epoch(data):
    res = _fit(lambda: LogisticRegression(data.schema), data, epochs=6, patience=1, lr=0.5)
    best = max(h["valid_auc"] for h in res.history)
    assert math.isclose(res.valid["auc"], best, rel_tol=1e-9)


# --------------------------------------------------------------------------- row-wise sparse embedding updates
from companion.models.ctr import DNN  # noqa: E402


@pytest.fixture(scope="module")
def small():
    return make_synthetic_ctr(1500, n_dense=1, n_sparse=4, vocab_size=40, n_pairs=1, n_triples=0, seed=7)


def _table_fit(model_fn, data, **kw):
    seed_everything(0)
    model = model_fn()
    cfg = train.TrainConfig(**{"epochs": 1, "batch_size": 64, "lr": 0.05, "progress": False, "seed": 1, **kw})
    train.fit(model, data, cfg)
    return model


def _rows_of_step(data, model, step, batch_size=64, seed=1):
    """Table rows the ``step``-th batch (0-based) of fit's first epoch looks up."""
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    idx = order[step * batch_size : (step + 1) * batch_size]
    return set((data.train.sparse[idx] + model.emb.sparse_off).flatten().tolist())


@pytest.mark.parametrize("opt", ["sparse_adam", "rowwise_adagrad"])
def test_sparse_updates_touch_only_the_rows_a_batch_looked_up(small, opt):
    build = lambda: DNN(small.schema, 8, hidden=(16,))  # noqa: E731
    seed_everything(0)
    init = build().emb.table.weight.detach().clone()
    one = _table_fit(build, small, max_steps=1, embedding_optimizer=opt).emb.table.weight.detach()
    two = _table_fit(build, small, max_steps=2, embedding_optimizer=opt).emb.table.weight.detach()
    m = build()
    s1, s2 = _rows_of_step(small, m, 0), _rows_of_step(small, m, 1)
    changed1 = set(torch.nonzero((one != init).any(1)).flatten().tolist())
    assert changed1 == s1  # step 1 changed exactly its rows
    only_first = sorted(s1 - s2)
    assert only_first and torch.equal(two[only_first], one[only_first])  # not looked up in step 2: untouched
    assert set(torch.nonzero((two != one).any(1)).flatten().tolist()) == s2
    assert not m.emb.table.sparse  # fit leaves the model as it found it
    # dense Adam is not lazy: the same rows keep moving on momentum in step 2, so the property above is not vacuous
    dense = _table_fit(build, small, max_steps=2, optimizer="adam").emb.table.weight.detach()
    dense1 = _table_fit(build, small, max_steps=1, optimizer="adam").emb.table.weight.detach()
    assert not torch.equal(dense[only_first], dense1[only_first])


def test_sparse_adam_equals_adam_when_every_row_is_touched_every_step(small, monkeypatch):
    # one full batch per epoch: every looked-up row is touched at every step, where lazy Adam and Adam agree;
    # rows never looked up get zero gradients and keep their initial values under both. One more condition:
    # SparseAdam adds eps to sqrt(v) before the bias correction, Adam after it (SparseAdam's eps is Adam's
    # eps / sqrt(1 - beta2^t)), so rows with gradients near eps differ; a negligible eps in both removes that.
    from functools import partial
    monkeypatch.setitem(train.OPTIMIZERS, "adam", partial(torch.optim.Adam, eps=1e-20))
    monkeypatch.setattr(torch.optim, "SparseAdam", partial(torch.optim.SparseAdam, eps=1e-20))
    from companion.data.schema import CTRSplits
    keep = torch.nonzero(small.train.sparse[:, 0] < 30).flatten()  # ids 30..39 of the first field never occur
    small = CTRSplits(small.schema, small.train.subset(keep), small.valid, small.test)
    build = lambda: DNN(small.schema, 8, hidden=(16,))  # noqa: E731
    kw = dict(epochs=4, batch_size=len(small.train), patience=9, monitor="logloss")
    a = _table_fit(build, small, **kw)
    b = _table_fit(build, small, embedding_optimizer="sparse_adam", **kw)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, rtol=1e-5, atol=1e-6), (k, (va - vb).abs().max())
    seed_everything(0)
    init = build().emb.table.weight
    used = torch.zeros(len(init), dtype=torch.bool)
    used[(small.train.sparse + a.emb.sparse_off).flatten()] = True
    assert (~used).any() and torch.equal(b.emb.table.weight[~used], init[~used])
    assert not torch.allclose(b.emb.table.weight[used], init[used])


def test_sparse_adagrad_and_rowwise_adagrad_equal_dense_adagrad(small):
    # Adagrad has no momentum, so lazy and dense updates agree for any batching; row-wise equals element-wise
    # on width-1 tables (LR's weights), and differs from it on wider ones
    lr_model = lambda: LogisticRegression(small.schema)  # noqa: E731
    dense = _table_fit(lr_model, small, optimizer="adagrad", epochs=2, patience=9)
    for opt in ("sparse_adagrad", "rowwise_adagrad"):
        got = _table_fit(lr_model, small, optimizer="adagrad", embedding_optimizer=opt, epochs=2, patience=9)
        for (k, va), vb in zip(dense.state_dict().items(), got.state_dict().values()):
            assert torch.allclose(va, vb, rtol=1e-5, atol=1e-6), (opt, k, (va - vb).abs().max())
    dnn = lambda: DNN(small.schema, 8, hidden=(16,))  # noqa: E731
    a = _table_fit(dnn, small, optimizer="adagrad", embedding_optimizer="sparse_adagrad")
    b = _table_fit(dnn, small, optimizer="adagrad", embedding_optimizer="rowwise_adagrad")
    assert not torch.allclose(a.emb.table.weight, b.emb.table.weight, atol=1e-4)


def test_rowwise_adagrad_keeps_one_accumulator_per_row():
    w = torch.nn.Parameter(torch.zeros(5, 3))
    opt = train.RowWiseAdagrad([w], lr=1.0)
    w.grad = torch.sparse_coo_tensor(torch.tensor([[1, 3, 1]]), torch.tensor([[1.0, 2, 2], [3, 0, 0], [1, 0, 0]]), (5, 3))
    opt.step()
    # row 1's gradient is [2, 2, 2] (two lookups coalesced): accumulator mean(g^2) = 4, step -g / 2
    assert opt.state[w]["sum"].tolist() == [0, 4, 0, 3, 0]
    assert torch.allclose(w[1], torch.tensor([-1.0, -1, -1])) and torch.allclose(w[3], torch.tensor([-3 / 3 ** 0.5, 0, 0]))
    assert w[[0, 2, 4]].abs().sum() == 0


def test_sparse_options_are_validated():
    with pytest.raises(ValueError, match="embedding_optimizer must be one of"):
        train.TrainConfig(embedding_optimizer="lazy")
    with pytest.raises(ValueError, match="weight_decay does not apply"):
        train.TrainConfig(embedding_optimizer="sparse_adam", weight_decay=1e-4)
