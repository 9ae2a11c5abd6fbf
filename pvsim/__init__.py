"""Simulator, virtual house and benchmarks: developer tools on the service's own core.

Installed with the `sim` extra (numpy, matplotlib); `pvopt run` never imports them.
"""
