# cvkit: two commands do everything on a fresh machine.
#   make lab    set up .venv if needed, register the Jupyter kernel, open JupyterLab on notebook 00
#   make test   set up .venv if needed, run the whole test suite (unit tests + every notebook at smoke scale)
# Options: PYTHON=python3.11 (interpreter for the venv), HEADLESS=1 PORT=8888 (server without a browser).

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8888
BIN    := $(VENV)/bin
# JupyterLab refuses to start as root (containers, some lab servers) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
STAMP  := $(VENV)/.cvkit-installed

.PHONY: lab test install kernel clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "cvkit needs Python 3.10 or newer; run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	@touch $(STAMP)

kernel: install
	$(BIN)/python -m ipykernel install --user --name cvkit --display-name "Python (cvkit)" >/dev/null
	@echo "Jupyter kernel 'Python (cvkit)' registered for $(CURDIR)/$(VENV)"

lab: kernel
ifeq ($(HEADLESS),1)
	cd notebooks && ../$(BIN)/jupyter lab $(ROOT_FLAG) --no-browser --ip=0.0.0.0 --port=$(PORT) 00_getting_started.ipynb
else
	cd notebooks && ../$(BIN)/jupyter lab $(ROOT_FLAG) 00_getting_started.ipynb
endif

test: install
	CVKIT_SMOKE=1 $(BIN)/python -m pytest --nbval-lax

clean:
	rm -rf build .pytest_cache .hypothesis
