"""Periodic work of the service and its bodies: regulation ticks, store writes, schedules, the
InfluxDB outbox; they see the outside world only through `jobs.ports`."""
