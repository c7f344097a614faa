"""Massage programs: the model, the technique patterns, the built-in programs and the loader."""
