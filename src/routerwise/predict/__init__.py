"""Stage predict — quality predictors: expected per-model quality of prompts nobody has scored.

Inputs: a :class:`~routerwise.spec.workload.Workload` with outcome labels (and prompt text or
task names). Outputs: a fitted :class:`~routerwise.predict.base.Predictor` whose
``predict(texts, hints)`` gives an (N, K) array of expected quality in [0, 1] (the dual prices
of the routing stage treat a score as one), a safe on-disk artifact (``artifact``), and the
held-out evaluation (``evaluate``: out-of-fold predictions, AUC/Brier, calibration, routing).

Kinds (``registry.PREDICTORS``): ``tfidf`` (default), ``knn``, ``embedding``, ``task``.
Importing this package does no work; scikit-learn and the embedding model load on use.
"""
