"""Built-in scenarios and their cited data files (docs/architecture.md §5, §2).

Stage: scenarios (imports ``spec`` only). Inputs: the cited data files in ``data/``
(accuracies from HELM Lite and LLMRouter, lengths from LLMRouter prompts and AlpacaEval
answers; recomputed by ``scripts/compute_scenario_data.py``). Outputs: ``derived`` workloads.
Import the submodules (``registry``, ``derive``, ``scenario_data``); nothing runs at import.
"""
