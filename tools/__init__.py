"""Developer tools that are not part of certsms itself (``make mutation``)."""
