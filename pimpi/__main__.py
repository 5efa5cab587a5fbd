"""`python -m pimpi` runs the same command line as the `pimpi` script."""

from pimpi.cli import main

if __name__ == "__main__":
    main()
