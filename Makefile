# The two commands of the README: `make demo` and `make test`.
.PHONY: demo demo-analysis test setup lint services lock

# Reference data for the demo and the tests (the repo's sibling folder ../shared/data by default).
export FLOODLIGHT_REFERENCE_DATA ?= $(abspath $(CURDIR)/../shared/data)
export PGEOCODE_DATA_DIR ?= $(FLOODLIGHT_REFERENCE_DATA)/pgeocode
PORT ?= 8000

# The demo runs on the embedded default (SQLite under var/, DEBUG, demo mode), chosen here
# explicitly: the settings refuse to start without DATABASE_URL and SECRET_KEY otherwise.
demo demo-analysis: export FLOODLIGHT_EMBEDDED = 1

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/python manage.py migrate --noinput
	.venv/bin/python manage.py seed_demo
	@echo "== The demo study runs at http://127.0.0.1:$(PORT)/  (admin: http://127.0.0.1:$(PORT)/admin/, user admin / password admin)"
	.venv/bin/python manage.py runserver 127.0.0.1:$(PORT)

# After `make demo` (or alongside it): 300 simulated respondents take the demo study through its
# real pages, then the export and the pre-registered analysis report run on their data.
demo-analysis: setup
	.venv/bin/python manage.py migrate --noinput
	.venv/bin/python manage.py seed_demo
	.venv/bin/python manage.py simulate_respondents --study demo --count 300
	.venv/bin/python manage.py export_responses --study demo --format csv --out var/demo-export.csv
	.venv/bin/python manage.py export_codebook --format md --out var/demo-codebook.md
	rm -rf var/demo-letters
	.venv/bin/python manage.py export_letters --study demo --out var/demo-letters
	.venv/bin/python -m analysis weights --input var/demo-export.csv --out var/demo-weights.csv
	.venv/bin/python -m analysis report --input var/demo-export.csv --out var/demo-report
	@echo "== open var/demo-report/index.html"

services:
	./scripts/services.sh

test: services
	./scripts/setup.sh --browser
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	DJANGO_SETTINGS_MODULE=studyserver.settings_test .venv/bin/python manage.py check_instrument
	.venv/bin/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports

# requirements.lock: the versions .venv has of everything floodlight[dev,analysis,gpu] needs.
lock:
	.venv/bin/python scripts/lock.py
