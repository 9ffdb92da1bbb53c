"""``python -m ocr_denoise``: the ``ocr-denoise`` command, for environments where the
script is not on PATH (a virtualenv that is not activated, ``pipx run``...)."""

import sys

from .cli import main

sys.exit(main())
