"""`python -m pvopt.cli`: what `pvsim.live.spawn_service` runs (the package lost cli.py's
`__main__` guard when it became a package)."""

from pvopt.cli import main

main()
