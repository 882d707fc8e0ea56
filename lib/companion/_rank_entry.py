"""The per-rank wrapper :func:`companion.distributed.launch` puts under torchrun: run the target script or module
as ``__main__`` and write this rank's exit code to ``<record-dir>/exit_<RANK>`` (a rank stopped by a signal
records minus the signal number), so the driver can tell which rank failed first."""
from __future__ import annotations

import os
import runpy
import signal
import sys
import traceback
from pathlib import Path


def main() -> None:
    argv = sys.argv[1:]
    if len(argv) < 4 or argv[0] != "--record-dir" or argv[2] not in ("--module", "--script"):
        sys.exit("usage: python -m companion._rank_entry --record-dir DIR (--module NAME | --script PATH) [ARGS...]")
    record = Path(argv[1]) / f"exit_{os.environ.get('RANK', '0')}"
    kind, target, rest = argv[2], argv[3], argv[4:]
    (Path(argv[1]) / f"pid_{os.environ.get('RANK', '0')}").write_text(str(os.getpid()))  # for the driver's timeout

    def write(code: int) -> None:
        try:
            record.write_text(str(code))
        except OSError:
            pass

    def on_signal(signum, frame):
        write(-signum)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    code = 0
    sys.argv = [target, *rest]
    try:
        if kind == "--module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, str(Path(target).resolve().parent))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    write(code)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown: a stuck collective thread must not keep a failed rank alive


if __name__ == "__main__":
    main()
