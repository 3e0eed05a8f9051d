"""``python -m lattice_stripe.emulator``: the same as ``lattice-stripe emulator``."""

import sys

from lattice_stripe.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["emulator", *sys.argv[1:]]))
