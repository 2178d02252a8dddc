# Feza Live. `make run` starts the whole local stack; `make test` runs every test.
# Both install what is missing first (scripts/install-deps.sh).

# One shared build directory outside the clone is only a speed-up; override freely.
CARGO_TARGET_DIR ?= /var/tmp/feza-target
export CARGO_TARGET_DIR

.PHONY: run test bench deps lint fmt openapi package icons

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

deps:
	bash scripts/install-deps.sh

# The desktop app's Debian package (release build): $(CARGO_TARGET_DIR)/release/bundle/deb/.
package:
	bash scripts/install-deps.sh
	bash scripts/app-deps.sh
	ui/node_modules/.bin/tauri build --bundles deb

# The app's icons, every size, from the one drawing icons/feza-live.svg.
icons:
	bash scripts/app-deps.sh
	ui/node_modules/.bin/tauri icon icons/feza-live.svg -o icons
	rm -rf icons/android icons/ios

# The API contract as the server serves it, for review (a test fails when it differs).
openapi:
	cargo run --quiet --locked -p live-server -- openapi > docs/openapi.json

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all
