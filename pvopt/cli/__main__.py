"""`python -m pvopt.cli`: how `pvsim.live.spawn_service` starts `pvopt run`."""

from pvopt.cli import main

main()
