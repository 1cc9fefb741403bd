# The two front-door commands (see README.md).
.PHONY: run run-cluster test setup train bench user

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

user:           ## make user NAME=小李 ROLE=agent|supervisor|editor: a desk/editor account, password printed once
	@test -n "$(NAME)" -a -n "$(ROLE)" || { echo "usage: make user NAME=小李 ROLE=agent|supervisor|editor"; exit 2; }
	@bash scripts/setup.sh >/dev/null && . scripts/env.sh && .venv/bin/python -m bot.services.users create "$(NAME)" --role "$(ROLE)" --generate
