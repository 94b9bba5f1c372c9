"""The fixed choices of a k-shot evaluation, numpy-free so that configs (`emergelab config icl-eval`) can check
them without loading the evaluation code.

    CONDITIONS  how demonstrations are labelled: gold (their own label), random (a label drawn at random),
                flipped (the next label, i -> i + 1 mod L), unrelated (the true mapping shown by words that are no
                label: foo, bar, ...); icl/task.py `condition_labels`
    BOS_MODES   what goes before every prompt: auto (the special ids the tokenizer itself adds), always (its BOS
                token), never (nothing); icl/prompts.py
"""

CONDITIONS = ("gold", "random", "flipped", "unrelated")
BOS_MODES = ("auto", "always", "never")
