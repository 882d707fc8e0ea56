"""The restricted unpickler: NumPy arrays, dtypes, scalars and builtins containers load; any other global is
refused by name, before it is imported or called."""
import os
import pickle

import numpy as np
import pytest

from companion.data import safe_pickle
from companion.data.safe_pickle import UnsafePickleError


class _CallsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_loads_numpy_array_and_containers():
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.int64(3), (1.5, "x")], "c": np.dtype("<f8"),
           "d": {np.float64(0.25)}}
    out = safe_pickle.loads(pickle.dumps(obj, protocol=3))
    np.testing.assert_array_equal(out["a"], obj["a"])
    assert out["a"].dtype == np.float32 and out["a"].shape == (2, 3)
    assert out["b"][0] == 3 and isinstance(out["b"][0], np.int64) and out["b"][1] == (1.5, "x")
    assert out["c"] == np.dtype("<f8") and out["d"] == {0.25}


@pytest.mark.parametrize("protocol", [3, 4, 5])  # the benchmark files are protocol 3; 2 stores bytes via _codecs
def test_numpy_scalar_like_the_benchmark_files(protocol):
    out = safe_pickle.loads(pickle.dumps({7: {"para": np.float64(1.25), "perf": 0.5}}, protocol=protocol))
    assert out == {7: {"para": 1.25, "perf": 0.5}} and isinstance(out[7]["para"], np.float64)


def test_refuses_os_system_and_names_it(tmp_path):
    flag = tmp_path / "ran"

    class _Touch:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    data = pickle.dumps(_Touch())
    with pytest.raises(UnsafePickleError, match=r"(posix|nt|os)\.system"):
        safe_pickle.loads(data)
    assert not flag.exists()  # nothing ran
    assert pickle.loads(data) == 0 and flag.exists()  # the plain unpickler would have run it


@pytest.mark.parametrize("obj, name", [(_CallsEval(), "builtins.eval"), (_CallsSystem(), "system")])
def test_refuses_other_globals(obj, name):
    with pytest.raises(UnsafePickleError, match=name):
        safe_pickle.loads(pickle.dumps(obj))


def test_refuses_an_unknown_class_inside_a_container():
    from collections import OrderedDict

    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        safe_pickle.loads(pickle.dumps({"ok": np.zeros(2), "bad": OrderedDict(a=1)}))


def test_load_from_file(tmp_path):
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps([np.ones(3)]))
    np.testing.assert_array_equal(safe_pickle.load(p)[0], np.ones(3))
