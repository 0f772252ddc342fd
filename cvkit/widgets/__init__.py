"""Interactive explorers for the notebooks (ipywidgets + matplotlib).

Each explorer is a small class: its controls are ipywidgets, its state is plain attributes, and
``update()`` recomputes the state and redraws. Tests drive the controls directly, without a browser.
"""
