"""Persistence of machine state, transitions and energy counters."""
