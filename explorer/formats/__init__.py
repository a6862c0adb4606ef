"""Sources and archive formats read into the neutral model: archives, folders, engines, registries,
compression and tar scanning."""
