"""Interpretability on our models and any local Hugging Face model: trace, interventions and patching, attention,
rollout and head detectors, logit lens, Captum attribution, probes. Names load on first use (`emergelab.lazy`)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "zero_ablate": ".ablation",
    **dict.fromkeys(["trace", "TraceCache", "UnknownActivationName", "activation_names"], ".tracing"),
    **dict.fromkeys(["edit", "ablate", "ablate_heads"], ".intervene"),
    **dict.fromkeys(["activation_patching", "attribution_patching", "PatchingResult"], ".patching"),
    **dict.fromkeys(["detection_patterns", "head_scores", "mul_score", "prefix_matching_pattern", "stack_patterns"],
                    ".heads"),
    **dict.fromkeys(["ImageAttribution", "TokenAttribution", "attribute_image", "attribute_tokens"], ".attribution"),
    **dict.fromkeys(["ProbeResult", "flatten_activations", "linear_probe", "probe_layers", "project"], ".probes"),
    **dict.fromkeys(["AttentionPatterns", "attention", "attention_patterns", "head_detectors", "rollout"],
                    ".attention"),
    **dict.fromkeys(["LogitLens", "logit_lens", "unembedding"], ".lens"),
    **dict.fromkeys(["RepeatedTokens", "repeated_random_tokens", "measure_clean", "ablated_token_loss"],
                    ".lm_induction_probe"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
