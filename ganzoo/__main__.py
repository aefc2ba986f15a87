"""`python -m ganzoo ...`, and `torchrun ... -m ganzoo train ...` (one process per rank)."""
from .cli import main

main()
