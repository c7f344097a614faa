"""`python -m controller`: the cushion command line."""

from controller.entry import main

main()
