"""One seed of the UniDG study, end to end: a world, training / validation / test videos, the representation
networks, every clustering method, the ablations, the graph statistics and the missing-modality sweep.

A *seed* draws everything anew (world, characters, videos, network initialisations), so the spread over seeds is
the spread a reader would see rerunning the study. Roles of the videos:

* ``train``: fit the representation networks (unified and separate);
* ``val``: fit the GCN link models and tune every baseline's threshold (unseen by the representation network,
  so the GCN sees embeddings as noisy as the test ones);
* ``test``: every reported number (the mean over test videos).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..data import video_tracks as vt
from . import associate as A
from . import gcn as G
from . import graph
from . import methods as Mth
from . import represent as R
from .metrics import evaluate

FULL = "UniDG (dynamic graph + GCN + association)"
ROWS = {
    "kmeans": "k-means (oracle k) + association",
    "agglomerative": "agglomerative + association",
    "dbscan": "DBSCAN + association",
    "hdbscan": "HDBSCAN + association",
    "fixed": "kNN (fixed k) + GCN + association",
    "full": FULL,
    "no_assoc": "UniDG per modality, no association",
    "links_only": "UniDG, association by links only",
    "separate": "UniDG with separate networks",
    "joint": "UniDG, one joint graph instead of association",
}


@dataclass
class ExperimentConfig:
    n_train: int = 4
    n_val: int = 2
    n_test: int = 2
    episode: dict = field(default_factory=lambda: {"n_major": 6, "n_minor": 10, "n_shots": 120})
    rep: R.RepConfig = field(default_factory=R.RepConfig)
    gcn: G.GCNConfig = field(default_factory=G.GCNConfig)
    k: int = 20
    variant: str = "reciprocal"
    fixed_ks: tuple = (5, 10, 20)
    assoc: A.AssociationConfig = field(default_factory=A.AssociationConfig)
    baselines: tuple = ("kmeans", "agglomerative", "dbscan", "hdbscan")
    ablations: tuple = ("separate", "joint", "links_only")
    missing: tuple = ()
    graph_ks: tuple = (2, 3, 5, 8, 12, 20)
    graph_variants: tuple = ("prefix", "reciprocal", "expanded", "tolerant")


def _sets(videos, embs, joint=False):
    """Validation sets for fitting: per modality (or one per video when ``joint``), as (x, labels)."""
    out = []
    for v, e in zip(videos, embs):
        if joint:
            out.append((e, v.labels))
            continue
        for m in vt.MODALITIES:
            rows = v.rows(m)
            if len(rows) > 2:
                out.append((e[rows], v.labels[rows]))
    return out


def per_modality(video, emb, clusterer) -> np.ndarray:
    """Cluster each modality on its own; ids made distinct across modalities."""
    labels = np.full(len(video.tracks), -1, np.int64)
    offset = 0
    for m in vt.MODALITIES:
        rows = video.rows(m)
        if not len(rows):
            continue
        n_true = len(np.unique(video.labels[rows]))
        lab = np.asarray(clusterer.predict(emb[rows], n_clusters=n_true))
        labels[rows] = np.unique(lab, return_inverse=True)[1] + offset
        offset = labels.max() + 1
    return labels


def score(video, labels) -> dict:
    t = video.tracks
    y = video.labels
    keep = y >= 0
    major = [c for c in video.info.get("major", []) if (y == c).any()] or None
    return evaluate(y[keep], labels[keep], t.start.to_numpy()[keep], t.end.to_numpy()[keep], characters=major)


def _mean(dicts):
    keys = [k for k, v in dicts[0].items() if isinstance(v, (int, float))]
    return {k: float(np.mean([d[k] for d in dicts])) for k in keys}


def make_videos(seed: int, cfg: ExperimentConfig, test_overrides: dict | None = None):
    world = vt.make_world(seed)
    ep = cfg.episode
    train = [vt.make_episode(world, 1000 * seed + i, **ep) for i in range(cfg.n_train)]
    val = [vt.make_episode(world, 1000 * seed + 100 + i, **ep) for i in range(cfg.n_val)]
    test = [vt.make_episode(world, 1000 * seed + 200 + i, **{**ep, **(test_overrides or {})}) for i in range(cfg.n_test)]
    return world, train, val, test


def graph_stats(videos, embs, variant: str, k: int, ks, variants=()) -> list[dict]:
    """Edge precision / node recall / mean degree per modality, averaged over videos: fixed-k graphs (each k in
    ``ks``), the dynamic graph of ``variant`` (and of any other ``variants``), and fixed k at the dynamic graph's own
    mean degree (the fair control: fewer edges alone raise precision)."""
    rows = []
    others = [v for v in variants if v != variant]
    for m in vt.MODALITIES:
        acc = {}
        for v, e in zip(videos, embs):
            r = v.rows(m)
            if len(r) < 3:
                continue
            idx, sim = graph.knn(e[r], max(k, max(ks)))
            y = v.labels[r]
            dyn = graph.neighbourhoods(idx, sim, variant, k=k)
            acc.setdefault(("dynamic", variant), []).append(graph.edge_quality(dyn, y))
            matched = max(1, int(round(dyn.sizes.mean())))
            acc.setdefault(("fixed, matched degree", "fixed"), []).append(
                graph.edge_quality(graph.neighbourhoods(idx, sim, "fixed", k=matched), y))
            for o in others:
                acc.setdefault((f"dynamic ({o})", o), []).append(graph.edge_quality(graph.neighbourhoods(idx, sim, o, k=k), y))
            for kk in ks:
                acc.setdefault((f"fixed k={kk}", "fixed"), []).append(
                    graph.edge_quality(graph.neighbourhoods(idx, sim, "fixed", k=kk), y))
        for (name, var), qs in acc.items():
            rows.append({"modality": m, "graph": name, "variant": var, **_mean(qs)})
    return rows


def run_seed(seed: int, cfg: ExperimentConfig, progress: bool = False) -> dict:
    """Every method and ablation on one seed; returns long tables (one row per method and seed)."""
    world, train, val, test = make_videos(seed, cfg)
    rep_u = R.train_representation(train, replace(cfg.rep, shared=True, seed=seed), progress)
    rep_s = R.train_representation(train, replace(cfg.rep, shared=False, seed=seed), progress) \
        if "separate" in cfg.ablations else None
    emb = {"unified": ([R.embed(rep_u, v) for v in val], [R.embed(rep_u, v) for v in test])}
    if rep_s is not None:
        emb["separate"] = ([R.embed(rep_s, v) for v in val], [R.embed(rep_s, v) for v in test])
    gcfg = replace(cfg.gcn, seed=seed)
    uval, utest = emb["unified"]
    vsets = _sets(val, uval)

    # the dynamic graph + GCN (UniDG's clusterer) and the fixed-k control, k tuned on validation
    dyn = Mth.GraphGCN(cfg.variant, cfg.k, gcfg).fit(vsets)
    fixed_by_k = {k: Mth.GraphGCN("fixed", k, gcfg).fit(vsets) for k in cfg.fixed_ks}
    val_f = {k: np.mean([score(v, per_modality(v, e, c))["bcubed_f"] for v, e in zip(val, uval)])
             for k, c in fixed_by_k.items()}
    best_k = max(val_f, key=val_f.get)
    fixed = fixed_by_k[best_k]
    clusterers = {"full": dyn, "fixed": fixed}
    for b in cfg.baselines:
        c = {"kmeans": lambda: Mth.KMeansOracle(seed), "agglomerative": Mth.Agglomerative,
             "dbscan": Mth.DBSCANTuned, "hdbscan": Mth.HDBSCANTuned}[b]()
        clusterers[b] = c.fit(vsets)

    rows, assoc_logs = [], []
    results_by_method = {}
    no_cross = replace(cfg.assoc, cross_modal=False)
    for name, c in clusterers.items():
        per_video = []
        for v, e in zip(test, utest):
            lab = per_modality(v, e, c)
            fused = A.progressive(v, e, lab, cfg.assoc)
            per_video.append(score(v, fused["labels"]))
            if name == "full":
                assoc_logs.append({"video": v.video_id, **fused["log"], **A.link_accuracy(v)})
                results_by_method.setdefault("no_assoc", []).append(score(v, lab))
                if "links_only" in cfg.ablations:
                    results_by_method.setdefault("links_only", []).append(
                        score(v, A.progressive(v, e, lab, no_cross)["labels"]))
        results_by_method[name] = per_video
    if rep_s is not None:
        sval, stest = emb["separate"]
        sdyn = Mth.GraphGCN(cfg.variant, cfg.k, gcfg).fit(_sets(val, sval))
        results_by_method["separate"] = [score(v, A.progressive(v, e, per_modality(v, e, sdyn), no_cross)["labels"])
                                         for v, e in zip(test, stest)]
    if "joint" in cfg.ablations:
        jdyn = Mth.GraphGCN(cfg.variant, cfg.k, gcfg).fit(_sets(val, uval, joint=True))
        results_by_method["joint"] = [score(v, jdyn.predict(e)) for v, e in zip(test, utest)]
    for key, per_video in results_by_method.items():
        rows.append({"method": ROWS[key], "key": key, "seed": seed, **_mean(per_video)})

    # how much each modality's own clustering is worth (unified vs separate embeddings), before association
    mod_rows = []
    for rep_name, (_, tests) in emb.items():
        c = dyn if rep_name == "unified" else sdyn
        for m in vt.MODALITIES:
            vals = []
            for v, e in zip(test, tests):
                r = v.rows(m)
                if len(r) > 2:
                    vals.append(evaluate(v.labels[r], c.predict(e[r]))["bcubed_f"])
            mod_rows.append({"seed": seed, "representation": rep_name, "modality": m, "bcubed_f": float(np.mean(vals))})

    gstats = [{"seed": seed, **r} for r in graph_stats(test, utest, cfg.variant, cfg.k, cfg.graph_ks, cfg.graph_variants)]

    sweep = []
    for p in cfg.missing:
        _, _, _, mtest = make_videos(seed, replace(cfg, n_train=0, n_val=0), {"p_face_missing": float(p)})
        for key in ("full", "no_assoc", "separate", "fixed"):
            if key == "separate" and rep_s is None:
                continue
            per_video = []
            for v in mtest:
                if key == "separate":
                    e = R.embed(rep_s, v)
                    per_video.append(score(v, A.progressive(v, e, per_modality(v, e, sdyn), no_cross)["labels"]))
                    continue
                e = R.embed(rep_u, v)
                lab = per_modality(v, e, clusterers["fixed" if key == "fixed" else "full"])
                per_video.append(score(v, lab if key == "no_assoc" else A.progressive(v, e, lab, cfg.assoc)["labels"]))
            sweep.append({"seed": seed, "p_face_missing": float(p), "method": ROWS[key], "key": key, **_mean(per_video)})

    return {"methods": pd.DataFrame(rows), "modalities": pd.DataFrame(mod_rows), "graphs": pd.DataFrame(gstats),
            "association": pd.DataFrame(assoc_logs).assign(seed=seed), "sweep": pd.DataFrame(sweep),
            "fixed_k": {"chosen": best_k, "validation_bcubed_f": val_f},
            "videos": [v.summary() for v in test], "example": (test[0], utest[0])}


def digits_check(seed: int, k: int = 20, variant: str = "reciprocal", fixed_ks=(5, 10, 20),
                 gcn: G.GCNConfig | None = None) -> list[dict]:
    """The graph step on real data: scikit-learn's handwritten digits (1,797 images, 8x8 pixels, 10 classes).

    As in face-clustering benchmarks, training and test identities are disjoint: the seed draws five digit
    classes to fit the GCN (and tune thresholds and the fixed k) and the other five to test on. Features are the
    centred pixel vectors. Rows: one per graph (dynamic, fixed with tuned k), with clustering metrics and the
    graph's edge precision, plus fixed-k at the dynamic graph's mean degree (graph statistics only).
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)).astype(np.float32)
    rng = np.random.default_rng(seed)
    classes = rng.permutation(10)
    tr, te = np.isin(y, classes[:5]), np.isin(y, classes[5:])
    gcfg = replace(gcn or G.GCNConfig(), seed=seed)
    fit = [(x[tr], y[tr])]
    dyn = Mth.GraphGCN(variant, k, gcfg).fit(fit)
    fixed = {kk: Mth.GraphGCN("fixed", kk, gcfg).fit(fit) for kk in fixed_ks}
    train_f = {kk: bcubed_f_of(c, x[tr], y[tr]) for kk, c in fixed.items()}
    best = max(train_f, key=train_f.get)
    xt, yt = x[te], y[te]
    idx, sim = graph.knn(xt, max(k, max(fixed_ks)))
    dyn_nb = graph.neighbourhoods(idx, sim, variant, k=k)
    matched = max(1, int(round(dyn_nb.sizes.mean())))
    rows = []
    for name, c, nb in ((f"dynamic ({variant}, K={k})", dyn, dyn_nb),
                        (f"fixed k={best} (tuned)", fixed[best], graph.neighbourhoods(idx, sim, "fixed", k=best))):
        rows.append({"seed": seed, "graph": name, "kind": "dynamic" if c is dyn else "fixed",
                     **evaluate(yt, c.predict(xt)), **graph.edge_quality(nb, yt)})
    rows.append({"seed": seed, "graph": f"fixed k={matched} (matched degree)", "kind": "matched",
                 **graph.edge_quality(graph.neighbourhoods(idx, sim, "fixed", k=matched), yt)})
    return rows


def bcubed_f_of(clusterer, x, y) -> float:
    from .metrics import bcubed_prf

    return bcubed_prf(y, clusterer.predict(x))[2]


def run_study(seeds, cfg: ExperimentConfig, progress: bool = True) -> dict:
    """``run_seed`` over ``seeds``; the long tables concatenated, the first seed's example video kept."""
    from ..progress import tqdm

    out = [run_seed(s, cfg) for s in (tqdm(seeds, desc="seeds") if progress else seeds)]
    keys = ("methods", "modalities", "graphs", "association", "sweep")
    study = {k: pd.concat([o[k] for o in out], ignore_index=True) for k in keys}
    study["fixed_k"] = {s: o["fixed_k"] for s, o in zip(seeds, out)}
    study["videos"] = [v for o in out for v in o["videos"]]
    study["example"] = out[0]["example"]
    return study


def method_table(df: pd.DataFrame, metrics=("pairwise_f", "bcubed_f", "nmi", "coverage"), by: str = "method") -> pd.DataFrame:
    """Mean and 95% t interval over seeds per method (``lo``/``hi`` columns), best BCubed F first."""
    from ..evidence import interval

    rows = []
    for name, g in df.groupby(by, sort=False):
        r = {by: name, "seeds": len(g)}
        for m in metrics:
            v = g[m].to_numpy(float)
            lo, hi = interval(v) if len(v) > 1 else (np.nan, np.nan)
            r[m], r[m + "_lo"], r[m + "_hi"] = v.mean(), lo, hi
        rows.append(r)
    return pd.DataFrame(rows).sort_values(metrics[1] if len(metrics) > 1 else metrics[0], ascending=False)
