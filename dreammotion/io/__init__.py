"""Reading and writing frames, masks and videos."""
