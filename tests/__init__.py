"""The tests, a package: `tests/devhost` is then `tests.devhost`, never the `devhost` it tests."""
