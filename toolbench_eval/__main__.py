import sys

from toolbench_eval.cli import main

sys.exit(main())
