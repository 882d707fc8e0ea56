"""Progress bars for every long loop: ``tqdm.auto`` draws widget bars in Jupyter where ipywidgets is installed and
text bars elsewhere (terminals). tqdm warns about that fallback on import; the warning is silenced here, once.

Inside a notebook executed by ``companion run`` the bars are off: the runner sets ``COMPANION_PROGRESS=0`` in the
kernel's environment (the way it passes ``COMPANION_RUN_DIR``), because every refresh of a text bar would become
an output block of the executed notebook; the terminal shows papermill's one bar over the cells instead.
``COMPANION_PROGRESS=1`` turns them back on.
"""
import os
import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from tqdm.auto import tqdm as _tqdm


def enabled() -> bool:
    """Whether bars are drawn in this process (read at each bar's creation, so a test can flip it)."""
    return os.environ.get("COMPANION_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


class tqdm(_tqdm):
    """``tqdm.auto.tqdm``, silent when ``COMPANION_PROGRESS=0`` (a bar asked for explicitly still obeys it)."""

    def __init__(self, *args, **kwargs):
        if not enabled():
            kwargs["disable"] = True
        super().__init__(*args, **kwargs)


__all__ = ["tqdm", "enabled"]
