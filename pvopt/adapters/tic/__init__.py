"""The Linky TIC edge: the pure frame parser, STGE decoding, label→topic mapping, the serial
reader loop."""
