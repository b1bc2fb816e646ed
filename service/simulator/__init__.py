"""The virtual trial: a camera that photographs wounds with a marker, the simulated trial, the demo loader."""
