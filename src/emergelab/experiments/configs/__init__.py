"""The experiments' configs, one torch-free module per experiment (declared in `emergelab.experiments`)."""
