"""Turn a percent-format script (``# %%`` cells) into an output-free .ipynb.

Cell markers: ``# %%`` code, ``# %% [markdown]`` markdown (lines start with ``# ``), and
``# %% tags=["parameters"]`` for a tagged code cell. Used to author notebooks; the .ipynb is what is committed.
"""
import json
import re
import sys

import nbformat


def convert(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cells = re.split(r"^# %%", text, flags=re.M)
    for chunk in cells[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        tags = json.loads(m.group(1)) if (m := re.search(r"tags=(\[.*?\])", header)) else []
        if "[markdown]" in header:
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines()]
            cell = nbformat.v4.new_markdown_cell("\n".join(lines))
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    nbformat.write(convert(open(src).read()), dst)
    print(f"wrote {dst}")
