"""Service steps the triggers call: each takes plain values and the composed services."""
