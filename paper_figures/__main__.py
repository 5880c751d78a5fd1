"""Regenerate every paper figure on the built-in data: ``python -m paper_figures [--out DIR] [--full]``."""
import argparse
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")

from . import SIZES, check_names, figure_modules, load  # noqa: E402


def main(argv=None):
    names = ", ".join(module[len("fig_"):] for module in figure_modules())
    parser = argparse.ArgumentParser(
        prog="python -m paper_figures",
        description="Regenerate the paper figures on the built-in data: PNG files with their captions, and "
                    "every number they show in results.json.")
    parser.add_argument("--out", default="figures", help="folder for the PNG files and results.json (default: ./figures)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help=f"figures to make, by name (default: all of {names})")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--full", action="store_const", dest="size", const="full", help="the papers' sizes (hours)")
    scale.add_argument("--size", choices=SIZES, default="quick", help="run size (default: quick, minutes)")
    parser.set_defaults(size="quick")  # --full's store_const would otherwise leave size=None when no flag is given
    args = parser.parse_args(argv)
    try:
        names = check_names(args.only) if args.only else figure_modules()
    except ValueError as error:
        parser.error(str(error))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        start = time.perf_counter()
        paths = load(name).make(out, size=args.size)
        written.extend(paths)
        print(f"{name}: {len(paths)} figure(s) in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"wrote {len(written)} PNG files and results.json to {out.resolve()}")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
