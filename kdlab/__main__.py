"""``python -m kdlab …``: the command line (``kdlab.cli``)."""

import sys

from kdlab.cli import main

sys.exit(main())
