"""Entry point for ``python app.py`` and Hugging Face Spaces.

Locally this is the same as ``python -m voicebox``.
"""

import sys

from voicebox.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
