"""RouterWise: joint GPU allocation and latency-aware routing for multi-model LLM serving.

Pipeline (docs/architecture.md §2): spec → profiles → latency curves → routing → search → plan.
Importing the package does no work: no files are read and nothing is computed.
"""

__version__ = "0.1.0"
