"""Image sources and formats, read into one neutral model. No Qt here."""
