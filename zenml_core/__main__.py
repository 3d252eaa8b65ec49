"""``python -m zenml_core``: the same command line as ``zenml``; remote backends run this."""

import sys

from zenml_core.cli import main

sys.exit(main())
