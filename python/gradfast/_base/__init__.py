"""The shared runtime of gradfast's classes, one module per family.

A class of the API is declared once here (its hyper-parameters, state slots, argument
checks and docstring) and implemented twice as siblings: the Rust-backed class in
``gradfast.<family>`` and the pure-NumPy twin in ``gradfast.reference.<family>``. Neither
subclasses the other; each supplies only the arithmetic.
"""
