"""The catalogue: lenses and workflows, their events and refusals. Pure: no I/O."""
