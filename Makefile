# The two commands a newcomer needs: `make run` and `make test` (`make lint` and `make typecheck` check style and types).
# Both create .venv on first use and reinstall only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The suite runs on every core (pytest-xdist), with one worker more than there are cores: a test
# spends about a third of its time waiting on subprocesses and sockets (the crash tests' real
# `chatcrm web`/`worker`, the fake platforms), and the extra worker keeps the cores busy meanwhile
# (2 cores, 1,488 tests: 8 min 44 s with 2 workers, 6 min 45 s with 3; README has today's figure and what
# it cost per file). `make test PYTEST_XDIST=` runs it in one process. loadgroup hands out one test at a time (each its own group unless marked
# xdist_group), so the crash tests, which run first, spread over the workers; plain `load` sends
# the first quarter of the suite to one worker in one chunk.
PYTEST_XDIST ?= -n $(shell echo $$(( $$(nproc) + 1 ))) --dist loadgroup

.PHONY: run test test-crash lint typecheck bench venv clean catalogs

venv: $(STAMP)

# setup.py and the C file: `pip install -e .` compiles the miner's accelerator (crm_core/mining/_fastmine.c)
# in place, so a change to either rebuilds it.
$(STAMP): pyproject.toml setup.py crm_core/mining/_fastmine.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,spark]'
	$(BIN)/pybabel compile --use-fuzzy -d $(LOCALES) -D chatcrm --statistics
	@touch $(STAMP)

# The message catalogs (crm_core.i18n): extract every marked string into the template, merge it
# into each language's .po (new strings appear untranslated there: translate them), and compile.
# tests/test_i18n_catalog.py fails while a string is missing or untranslated.
LOCALES := crm_core/locale
catalogs: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header -o $(LOCALES)/chatcrm.pot .
	$(BIN)/pybabel update -i $(LOCALES)/chatcrm.pot -d $(LOCALES) -D chatcrm --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALES) -D chatcrm --statistics

run: $(STAMP)
	$(BIN)/chatcrm run

test: $(STAMP)
	# Bytecode for our own modules, as installing a wheel writes it: with PYTHONDONTWRITEBYTECODE set
	# (as on the development machines) every `chatcrm web`/`worker` the tests start compiled them again.
	$(BIN)/python -m compileall -q bot crm_core
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)
	# The example plugin's own suite, through the testing kit (chatcrm.testing) as a plugin author runs it.
	PYTHONPATH=examples/plugins/chatcrm-example $(BIN)/python -m pytest -q examples/plugins/chatcrm-example/tests

# The crash tests at full size (a 10,000-recipient campaign killed three times; 10 kills per scenario
# and database while Slack and Telegram deliveries are handled), before a release.
test-crash: $(STAMP)
	CHATCRM_CRASH_RECIPIENTS=10000 CHATCRM_CRASH_POINTS=10 $(BIN)/python -m pytest $(PYTEST_XDIST) -m slow $(PYTEST_ARGS)

# Style: ruff's lint rules and its formatter (pyproject.toml [tool.ruff]); fix with
# `ruff format . && ruff check --fix .`.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Types: mypy over bot and crm_core (pyproject.toml [tool.mypy]).
typecheck: $(STAMP)
	$(BIN)/mypy bot crm_core

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
	find $(LOCALES) -name '*.mo' -delete
