"""LocalToolBench: an executable, offline world in the ToolBench layout.

Categories, tools and APIs are data (`catalog.py`); every API is a function over a SQLite database
that is built deterministically from a seed (`database.py`); queries carry ground truth computed by
executing their call plans (`queries.py`); an oracle planner writes expert trajectories (`oracle.py`);
`generate.py` writes the whole world to `data/localtoolbench/`. `LocalBackend` (`backend.py`) executes
calls for the evaluation pipeline.
"""

# Bump when the database schema, the data generators or the API behaviour change: the cached database
# file name carries it, so a stale cache is never reused.
WORLD_VERSION = "1"
DEFAULT_SEED = 7
