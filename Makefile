# The two front-door commands (see README.md).
.PHONY: run run-cluster test setup train bench

run:            ## set up and run everything (venv, knowledge, model, all services)
	bash scripts/run.sh

run-cluster:    ## the same on PostgreSQL + Redis: 2 Rasa and 2 action servers behind nginx (README, Production)
	bash scripts/run-cluster.sh

test:           ## set up and run the whole test suite
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

train:
	bash scripts/setup.sh && bash scripts/prepare.sh

bench:
	bash scripts/setup.sh && .venv/bin/python bench/latency.py
