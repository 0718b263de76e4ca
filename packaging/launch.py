"""Entry point of the bundled application (PyInstaller runs this file)."""

import multiprocessing
import sys

from app.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the training process re-enters the bundle here
    sys.exit(main())
