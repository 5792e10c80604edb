"""Entry script of the PyInstaller bundles: the same ``galaxy-explorer`` command line.

With no arguments the bundled app opens its window on the bundled sample catalogue.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the training data workers use multiprocessing
    from galaxy_explorer.cli import main

    sys.exit(main())
