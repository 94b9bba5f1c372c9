"""Built-in experiments, declared here by name, description and config class.

The config classes (`experiments/configs/`) are torch-free, so `emergelab list` and `emergelab config` need
neither torch nor the experiment's code; an experiment's module (training, analysis, report) is imported
when a run, sweep or report first asks the registry for it, and registers itself with `kit.register`
(`from emergelab.experiments import induction` is that module; its config is `configs.induction`).
The list below is the order `emergelab list` shows.
"""

from ..registry import experiments
from .configs import digits as _digits
from .configs import icl_classification as _icl_classification
from .configs import icl_eval as _icl_eval
from .configs import icl_regression as _icl_regression
from .configs import induction as _induction
from .configs import inspect as _inspect
from .configs import lm_induction as _lm_induction
from .configs import rbf_approx as _rbf_approx
from .configs import text_attention as _text_attention
from .configs import vae as _vae

for _name, _config_cls, _description in [
    ("induction", _induction.InductionConfig,
     "2-layer vs 1-layer attention-only transformers: induction heads form in a phase change (Olsson 2022)"),
    ("icl-regression", _icl_regression.ICLRegressionConfig,
     "transformer learns linear regression in context: error by k vs least squares, ridge, 3-NN (Garg 2022)"),
    ("icl-classification", _icl_classification.ICLClassificationConfig,
     "bursty item-label sequences: in-context vs in-weights learning and the induction head (Reddy 2023)"),
    ("icl-eval", _icl_eval.ICLEvalConfig,
     "k-shot accuracy of a local causal LM on a classification task, by shots and demonstration labels"),
    ("lm-induction", _lm_induction.LMInductionConfig,
     "induction heads of a real causal LM (SmolLM2-135M): found by prefix matching, confirmed by ablation"),
    ("inspect", _inspect.InspectConfig,
     "one text through one model: attention, rollout, logit lens, attributions, head detectors, patching"),
    ("text-attention", _text_attention.TextAttentionConfig,
     "attention pooling classifies short texts; its softmax weights show which words decided the class"),
    ("digits", _digits.DigitsConfig,
     "SOM -> RBF -> attention -> softmax on handwritten digits, explained by the prototypes it attends to"),
    ("rbf-approx", _rbf_approx.RBFApproxConfig,
     "RBF network fits x^2 and sin(3x) on [-1, 1] with 5-20 Gaussian centers: max error 1e-6 by K=20"),
    ("vae", _vae.VAEConfig,
     "MLP VAE on 8x8 digits: held-out ELBO, reconstructions, samples scored by FID, precision/recall"),
]:
    experiments.declare(_name, _description, f"{__name__}.{_name.replace('-', '_')}", config_cls=_config_cls)
