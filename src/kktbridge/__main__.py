"""`python -m kktbridge` is the `kktbridge` command."""

import sys

from .cli import main

sys.exit(main())
