"""Private Mosquitto and InfluxDB servers on loopback ports, for the tests and the demo only."""
