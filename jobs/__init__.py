"""Periodic work of the service: regulation ticks, schedules, energy aggregation."""
