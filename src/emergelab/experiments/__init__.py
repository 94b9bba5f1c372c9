"""Built-in experiments; importing this package registers them."""

from . import digits, icl_classification, icl_eval, icl_regression, induction, rbf_approx, text_attention  # noqa: F401
