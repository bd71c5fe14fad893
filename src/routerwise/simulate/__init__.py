"""Simulate stage: check a plan before anyone deploys it — a discrete-event simulation of the
whole planned cluster (``run``, ``cluster``) and an emulated OpenAI-compatible engine
(``emulator``), both driven by the estimator's engine model (``profiles/engine_sim.py``)."""
