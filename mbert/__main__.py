"""`python -m mbert` is the same as the `mbert` command."""

import sys

from .cli import main

sys.exit(main())
