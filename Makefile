# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv if missing, install affect into it, analyse the sample conversation
#   make test   the same set-up, then the test suite
#   make TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu demo
#               the same, with torch and torchaudio from that index (CPU-only wheels: without the
#               4.9 GB of CUDA libraries and triton that PyPI's torch pulls in); unset: PyPI's
PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX_URL ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.affect-installed

.PHONY: demo test install proto bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX_URL),$(PY) -m pip install --quiet --no-deps -c constraints.txt --index-url $(TORCH_INDEX_URL) torch torchaudio)
	$(PY) -m pip install --quiet -c constraints.txt -e protos/python -e clients/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/affect demo

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m benchmarks.accuracy all

clean-venv:
	rm -rf $(VENV)
