"""`python -m pvopt.cli`: what `pvopt` runs (the tests and the demo spawn the service so)."""

from pvopt.cli import main

main()
