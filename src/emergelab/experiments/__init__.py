"""Built-in experiments; importing this package registers them."""

from . import induction, rbf_approx  # noqa: F401
