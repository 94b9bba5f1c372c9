"""Run store (store.py, SQLite), run directories and progress (context.py), atomic writes (atomic.py) and
metric names (names.py). Import the modules themselves: this package imports nothing, so the leaf modules
(atomic, names) can be used without loading the store."""
