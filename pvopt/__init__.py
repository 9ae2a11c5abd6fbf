"""pvopt: photovoltaic surplus optimizer — wiring, CLI, config and simulator."""
