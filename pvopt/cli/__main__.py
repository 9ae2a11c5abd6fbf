"""`python -m pvopt.cli`, as `pvsim.live` spawns the service: the same as the `pvopt` script."""

from pvopt.cli import main

main()
