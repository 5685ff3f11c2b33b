# The two commands of the README's quickstart.
.PHONY: setup demo test test-quick

setup:
	bash scripts/setup.sh

# Edit the bundled demo manifest on the CPU with the embedded model (offline: it needs no download).
demo: setup
	HF_HUB_OFFLINE=1 .venv/bin/snakemake --cores 2 --workflow-profile profiles/default

# Unit tests, the end-to-end workflow test, and the SLURM test (needs root for apt and daemons).
test: setup
	HF_HUB_OFFLINE=1 DREAMMOTION_TEST_SLURM=1 .venv/bin/python -m pytest -q

# The fast tests only: no end-to-end workflow runs, no SLURM (no root needed).
test-quick: setup
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -m "not slow and not slurm"

# The paper-form benchmark (docs/quality.md): the 24 x 2 synthetic suite, every variant, Tables 1 and 3.
.PHONY: benchmark benchmark-suite
benchmark-suite: setup
	.venv/bin/python -m dreammotion.synthetic.suite --n 24 --seeds 0 1 --kinds colour texture background shape --out results/benchmark-suite

benchmark: benchmark-suite
	HF_HUB_OFFLINE=1 .venv/bin/snakemake --cores all --workflow-profile profiles/default --configfile config/benchmark.yaml tables
