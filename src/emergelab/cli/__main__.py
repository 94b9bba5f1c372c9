"""`python -m emergelab.cli` = the `emergelab` command."""

from . import main

if __name__ == "__main__":
    main()
