"""The ten papers, their slugs and notebooks: the one table the CLI, the runner and the report share."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .runtime import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


@dataclass(frozen=True)
class Paper:
    number: int
    slug: str
    title: str
    arxiv: str

    @property
    def notebook(self) -> Path:
        return NOTEBOOK_DIR / f"{self.number:02d}_{self.slug}.ipynb"

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else ""

    @property
    def built(self) -> bool:
        return self.notebook.exists()


PAPERS = [
    Paper(0, "ctr_basics", "Companion primer: CTR data with planted interactions, metrics and the trainer", ""),
    Paper(1, "interformer", "InterFormer: heterogeneous interaction learning for CTR prediction", "2411.09852"),
    Paper(2, "supernet_pim", "Towards Automated Model Design on Recommender Systems (supernet + PIM co-design)", "2411.07569"),
    Paper(3, "cubicml", "CubicML: ML-predicted performance for distributed ML systems co-design", "2409.04585"),
    Paper(4, "serialized_point_mamba", "Serialized Point Mamba: serialized point cloud mamba segmentation", "2407.12319"),
    Paper(5, "sigeo", "SiGeo: sub-one-shot NAS via information theory and loss-landscape geometry", "2311.13169"),
    Paper(6, "automl_ranking", "AutoML for large capacity modeling of Meta's ranking systems", "2311.07870"),
    Paper(7, "rankitect", "Rankitect: ranking architecture search battling world-class engineers at Meta scale", "2311.08430"),
    Paper(8, "distdnas", "DistDNAS: search efficient feature interactions within 2 hours", "2311.00231"),
    Paper(9, "fgps", "Farthest Greedy Path Sampling for two-shot recommender search", "2310.20705"),
    Paper(10, "unidg", "UniDG: unified and dynamic graph for temporal character grouping in long videos", "2308.14105"),
]
BY_SLUG = {p.slug: p for p in PAPERS}


def get(slug: str) -> Paper:
    """The paper for ``slug``; an unknown slug names the closest one and lists them all."""
    if slug in BY_SLUG:
        return BY_SLUG[slug]
    import difflib

    close = difflib.get_close_matches(slug, BY_SLUG, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise KeyError(f"unknown paper {slug!r}.{hint} Known slugs: {', '.join(BY_SLUG)}")
