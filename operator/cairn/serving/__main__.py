"""`python -m cairn.serving` is `cairn-serve`."""

import sys

from cairn.serving.main import main

if __name__ == "__main__":
    sys.exit(main())
