"""Hardware in the loop: a simulated cushion that speaks a firmware profile's bytes."""
