"""Built-in experiments; importing this package registers them."""

from . import digits, induction, rbf_approx  # noqa: F401
