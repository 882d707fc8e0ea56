import pytest

from companion.data import movielens
from companion.data.errors import DataFormatError, MissingDataError


def write_grouplens(folder, bad_item_line=False):
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t2\t881250950\n1\t11\t5\t881250951\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    genres = "|".join(["0"] * 18 + ["1"])
    item2 = "11|Item Two (1996)|01-Jan-1996||http://x|" + ("|".join(["0"] * 18) if bad_item_line else genres)
    (folder / "u.item").write_text(f"10|Toy Story (1995)|01-Jan-1995||http://x|{genres}\n{item2}\n", encoding="latin-1")
    return folder


def test_grouplens_folder(tmp_path):
    ml = movielens.load_movielens100k(write_grouplens(tmp_path / "ml-100k"))
    assert list(ml.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(ml.ratings) == 3 and ml.users["age"].tolist() == [24, 53]
    assert ml.items["Western"].tolist() == [1, 1] and len(ml.genres) == 19


def test_grouplens_malformed_line(tmp_path):
    with pytest.raises(DataFormatError, match=r"u.item:2: expected 24 fields"):
        movielens.load_movielens100k(write_grouplens(tmp_path / "ml-100k", bad_item_line=True))


def test_grouplens_missing_folder(tmp_path):
    with pytest.raises(MissingDataError, match="u.data"):
        movielens.load_movielens100k(tmp_path / "absent")


def test_offline_copy_has_the_real_dataset(monkeypatch):
    monkeypatch.delenv("COMPANION_MOVIELENS", raising=False)
    ml = movielens.load_movielens100k()
    assert (len(ml.ratings), len(ml.users), len(ml.items)) == (100000, 943, 1682)
    assert set(ml.ratings["rating"].unique()) == {1, 2, 3, 4, 5}
    assert list(ml.items.columns[3:]) == movielens.GENRES
