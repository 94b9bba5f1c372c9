"""Built-in experiments; importing this package registers them."""

from . import induction  # noqa: F401
