"""An opened image: loading it, its index cache, content reads, extraction, comparison, inspection. No Qt here."""
