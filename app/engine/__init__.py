"""The product without a screen: graph model, layers, inference, compiler, data, trainer.

Nothing in this package imports Qt or pyqtgraph (tests/engine/test_no_qt.py holds to that).
"""
