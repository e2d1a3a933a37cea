"""`python -m lastro`: the same command line as the `lastro` script."""

from lastro.cli import main

main()
