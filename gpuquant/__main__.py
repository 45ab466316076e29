"""``python -m gpuquant``: the same as the ``gpuquant`` command."""

import sys

from .cli import main

sys.exit(main())
