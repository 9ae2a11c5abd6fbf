"""Edges of the service: each wraps one outside system (broker, InfluxDB, serial meter, HA)."""
