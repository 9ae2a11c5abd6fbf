"""Functional core: load state machines and the regulator policy; pure, clock injected."""
