"""`python -m pvopt.cli`: how `pvsim.live.spawn_service` runs `pvopt run` (the layout commit
made `pvopt.cli` a package and left it without one)."""

from pvopt.cli import main

main()
