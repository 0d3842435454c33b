"""`fusion-extract`, the operator's command line (floor 2: it composes everything below it).

Installed with the `cli` extra (`pip install 'fusion-extract[cli]'`); the functions never import it, so
click and rich stay out of their images.
"""
