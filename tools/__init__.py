"""Application code on top of the libraries: evaluation, dataset preparation, reports, and their commands."""
