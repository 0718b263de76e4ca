"""Qt views and controllers. They observe the engine's model and issue undoable commands;
they are never the source of truth."""
