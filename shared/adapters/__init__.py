"""Thin adapters, one per library they wrap; each maps that library's errors to shared.errors."""
