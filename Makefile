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
# A fresh install downloads about 5 GB (PyPI's torch pulls in CUDA libraries and triton); a dropped
# connection must not end it. pip resumes a cut download itself (--resume-retries); when a
# download still fails, the whole step is run again after a pause, up to INSTALL_ATTEMPTS times,
# and pip's cache keeps what was already fetched.
INSTALL_ATTEMPTS ?= 4
PIP_INSTALL := $(PY) -m pip install --quiet --resume-retries 20
retried = n=1; until $(1); do \
	  if [ $$n -ge $(INSTALL_ATTEMPTS) ]; then echo "install: failed $$n times, giving up" >&2; exit 1; fi; \
	  echo "install: attempt $$n failed (network?); trying again in $$((n * 30)) s" >&2; \
	  sleep $$((n * 30)); n=$$((n + 1)); \
	done

.PHONY: demo test install proto bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call retried,$(PY) -m pip install --quiet --upgrade pip)
	$(if $(TORCH_INDEX_URL),$(call retried,$(PIP_INSTALL) --no-deps -c constraints.txt --index-url $(TORCH_INDEX_URL) torch torchaudio))
	$(call retried,$(PIP_INSTALL) -c constraints.txt -e protos/python -e clients/python -e '.[dev]')
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
