"""Regenerate every paper figure on the built-in data: ``python -m paper_figures [--out DIR]``."""
import argparse
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")

from . import figure_modules, load  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m paper_figures", description=__doc__)
    parser.add_argument("--out", default="figures", help="folder for the PNG files (default: ./figures)")
    parser.add_argument("--only", nargs="*", default=None, help="figure modules to make (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or figure_modules()
    written = []
    for name in names:
        start = time.perf_counter()
        paths = load(name).make(out, quick=args.quick)
        written.extend(paths)
        print(f"{name}: {len(paths)} figure(s) in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"wrote {len(written)} PNG files to {out.resolve()}")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
