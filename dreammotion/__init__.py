"""dreammotion: zero-shot text-driven video editing by space-time self-similar score distillation.

The importable library behind the Snakemake workflow. Nothing in here imports Snakemake.
"""

__version__ = "0.1.0"
