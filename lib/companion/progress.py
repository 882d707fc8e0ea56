"""Progress bars for every long loop: ``tqdm.auto`` draws widget bars in Jupyter where ipywidgets is installed and
text bars elsewhere (papermill's executed notebooks, terminals). tqdm warns about that fallback on import; for an
executed notebook the text bar is the intended output, so the warning is silenced here, once."""
import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
