"""``companion``: list the papers and their parameters, run notebooks, build the report, fetch data.

Exit codes: 0 every run finished; 1 a run did not finish (failed cell, dead kernel, papermill error; ``--all`` goes
on with the next paper) or outputs/ cannot be written; 2 bad input (unknown paper or parameter, bad value or
parameter file), refused before anything runs; 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import sys

from . import papers
from .params import ParameterError, parse_parameters


def _cmd_list(args) -> int:
    for p in papers.PAPERS:
        status = "" if p.built else "  [no notebook yet]"
        arxiv = f"arXiv {p.arxiv}" if p.arxiv else "primer"
        print(f"{p.slug:<24} {arxiv:<16} {p.title}{status}")
        if p.built and not args.brief:
            for prm in parse_parameters(p.notebook):
                print(f"    {prm.describe()}")
    return 0


def _one_line(err) -> str:
    return str(err.args[0] if getattr(err, "args", None) else err)


def _cmd_run(args) -> int:
    from .runner import NotebookFailed, RunInterrupted, RunSetupError, prepare, run

    if args.all == bool(args.slug):
        print("error: give one SLUG or --all", file=sys.stderr)
        return 2
    if args.all and args.param:
        print("error: -p overrides apply to one notebook; give a SLUG (or use --scale with --all)", file=sys.stderr)
        return 2
    targets = [p.slug for p in papers.PAPERS if p.built] if args.all else [args.slug]
    overrides = dict(args.param or [])
    try:  # every notebook's parameters are checked before the first one starts
        for slug in targets:
            prepare(slug, overrides, scale=args.scale, param_file=args.file)
    except (ParameterError, KeyError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    failed = []
    for slug in targets:
        print(f"== {slug} ({args.scale or 'notebook default'} scale)", flush=True)
        try:
            rec = run(slug, overrides, scale=args.scale, param_file=args.file, progress=not args.quiet)
            print(f"   ok in {rec['runtime_s']:.1f} s -> outputs/{slug}/{rec['run_id']}", flush=True)
        except (ParameterError, KeyError) as err:
            print(f"error: {_one_line(err)}", file=sys.stderr)
            return 2
        except RunSetupError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except NotebookFailed as err:
            print(f"FAILED ({err.status}): {err}", file=sys.stderr)
            failed.append(slug)
        except KeyboardInterrupt as err:
            msg = str(err) or f"{slug}: interrupted by the user (Ctrl-C)"
            print(f"\n{msg}", file=sys.stderr)
            if isinstance(err, RunInterrupted) and targets.index(slug) + 1 < len(targets):
                print(f"not started: {', '.join(targets[targets.index(slug) + 1:])}", file=sys.stderr)
            return 130
    if failed:
        print(f"{len(failed)} of {len(targets)} notebook(s) did not finish: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_report(args) -> int:
    from .report import build_report

    try:
        path = build_report()
    except OSError as err:
        print(f"error: cannot write the report: {err.strerror or err} ({err.filename or ''})", file=sys.stderr)
        return 1
    print(f"report: {path}")
    return 0


def _cmd_data(args) -> int:
    if args.what == "movielens":
        from .data.movielens import fetch_movielens100k

        print(f"MovieLens-100K cached in {fetch_movielens100k()}")
    elif args.what == "nasbench-graph":
        from .data.nasbench_graph import fetch_nasbench_graph

        print(f"NAS-Bench-Graph cached in {fetch_nasbench_graph()}")
    elif args.what == "lcdb":
        from .data.lcdb import fetch_lcdb

        print(f"LCDB log-loss curves cached in {fetch_lcdb()}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="companion", description=__doc__.split("\n")[0],
                                 epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="papers, slugs and every notebook parameter")
    p_list.add_argument("--brief", action="store_true", help="papers only, no parameters")
    p_list.set_defaults(func=_cmd_list)
    p_run = sub.add_parser("run", help="execute a notebook (or --all) into outputs/")
    p_run.add_argument("slug", nargs="?", help="paper slug (see `companion list`)")
    p_run.add_argument("--all", action="store_true", help="run every notebook")
    p_run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
    p_run.add_argument("-f", "--file", help="YAML file of parameter overrides")
    p_run.add_argument("--scale", choices=["quick", "laptop", "paper"], help="preset scale")
    p_run.add_argument("--quiet", action="store_true", help="no progress bar")
    p_run.set_defaults(func=_cmd_run)
    p_rep = sub.add_parser("report", help="build outputs/index.html from the latest runs")
    p_rep.set_defaults(func=_cmd_report)
    p_data = sub.add_parser("data", help="fetch datasets into the cache")
    p_data.add_argument("action", choices=["fetch"])
    p_data.add_argument("what", choices=["movielens", "nasbench-graph", "lcdb"])
    p_data.set_defaults(func=_cmd_data)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # `companion list | head`: the reader stopped reading; leave quietly (no traceback, no flush error at exit)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
