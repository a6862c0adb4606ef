"""Everything Qt: the window, its panels, item models and background workers."""
