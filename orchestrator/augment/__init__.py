"""`ganorch grid augment`: the grid spec, its cells and the actor job that retrains a LeNet per
cell, the driver, and the report (cell means, pivot, figures)."""
