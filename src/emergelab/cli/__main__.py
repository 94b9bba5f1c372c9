"""`python -m emergelab.cli` = the `emergelab` command."""

from . import main

main()
