"""`toolbench-eval localtoolbench`: generate the LocalToolBench world, or (re)build its database.

    toolbench-eval localtoolbench generate [--seed 7] [--out data/localtoolbench]
    toolbench-eval localtoolbench build-db [--world data/localtoolbench] [--force]
"""

from __future__ import annotations

import time
from pathlib import Path

from toolbench_eval.errors import UserError


def register(subparsers) -> None:
    from toolbench_eval.localtoolbench import DEFAULT_SEED
    from toolbench_eval.localtoolbench.generate import TEST_QUERIES_PER_GROUP, TRAIN_QUERIES
    from toolbench_eval.paths import DATA_DIR

    parser = subparsers.add_parser("localtoolbench", help="generate the offline LocalToolBench world")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    generate = actions.add_parser("generate", help="write tools, test groups, train split and trajectories")
    generate.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"world seed (default {DEFAULT_SEED})")
    generate.add_argument("--out", type=Path, default=DATA_DIR / "localtoolbench",
                          help="output folder (default data/localtoolbench); generated files there are replaced")
    generate.add_argument("--scale", type=float, default=1.0,
                          help="database size factor (default 1.0; small values for quick experiments)")
    generate.add_argument("--test-size", type=int, default=TEST_QUERIES_PER_GROUP,
                          help=f"queries per test group (default {TEST_QUERIES_PER_GROUP})")
    generate.add_argument("--train-size", type=int, default=sum(TRAIN_QUERIES.values()),
                          help=f"train queries, split G1/G2/G3 as the default (default {sum(TRAIN_QUERIES.values())})")
    generate.add_argument("--no-trajectories", action="store_true", help="skip the expert trajectories")
    generate.set_defaults(func=run_generate)

    build = actions.add_parser("build-db", help="build the world's SQLite database into the cache")
    build.add_argument("--world", type=Path, default=DATA_DIR / "localtoolbench",
                       help="world folder whose world.json names the seed (default data/localtoolbench)")
    build.add_argument("--force", action="store_true", help="rebuild even if the cached file exists")
    build.set_defaults(func=run_build_db)


def _train_sizes(total: int) -> dict[str, int]:
    from toolbench_eval.localtoolbench.generate import TRAIN_QUERIES

    default_total = sum(TRAIN_QUERIES.values())
    sizes = {group: total * count // default_total for group, count in TRAIN_QUERIES.items()}
    sizes["G1"] += total - sum(sizes.values())
    return sizes


def run_generate(args) -> int:
    from toolbench_eval.localtoolbench.generate import generate_world

    if args.test_size < 1 or args.train_size < 0 or not 0 < args.scale <= 1.0:
        raise UserError("--test-size must be >= 1, --train-size >= 0 and --scale in (0, 1]")
    start = time.perf_counter()
    info = generate_world(args.out, args.seed, scale=args.scale, test_size=args.test_size,
                          train_sizes=_train_sizes(args.train_size), trajectories=not args.no_trajectories)
    counts = info["counts"]
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"LocalToolBench written to {args.out} in {time.perf_counter() - start:.1f} s ({size / 1e6:.1f} MB)")
    print(f"  {counts['categories']} categories, {counts['tools']} tools, {counts['apis']} APIs")
    print("  test: " + ", ".join(f"{g} {n}" for g, n in counts["test_queries"].items()))
    print("  train: " + ", ".join(f"{g} {n}" for g, n in counts["train_queries"].items()))
    if counts["trajectories"]:
        print("  trajectories: " + ", ".join(f"{k} {v}" for k, v in counts["trajectories"].items()))
    return 0


def run_build_db(args) -> int:
    from toolbench_eval.localtoolbench.backend import read_world_info
    from toolbench_eval.localtoolbench.database import build_database, connect, content_digest, database_path

    info = read_world_info(args.world)
    path = database_path(info.seed, info.scale)
    if args.force or not path.exists():
        start = time.perf_counter()
        build_database(path, info.seed, info.scale)
        print(f"built {path} in {time.perf_counter() - start:.2f} s")
    conn = connect(path)
    try:
        if content_digest(conn) != info.digest:
            raise UserError(f"{path}: content differs from {info.path / 'world.json'}; regenerate the world with "
                            f"`toolbench-eval localtoolbench generate --seed {info.seed} --out {info.path}`")
    finally:
        conn.close()
    print(f"{path}: matches {info.path / 'world.json'} (seed {info.seed})")
    return 0
