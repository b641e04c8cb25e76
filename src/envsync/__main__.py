"""`python -m envsync` runs the `envsync` command."""

from envsync.cli import main

main()
