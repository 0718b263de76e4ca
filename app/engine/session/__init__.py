"""The application without a screen (napari's ``components/``, orange-canvas-core's
``scheme/`` + ``document/``): the open project as an evented Document with its command
history, the weights that belong to it, and the supervisor of training runs. The CLI, the
editor's widgets and tests drive it alike; nothing here imports Qt."""
