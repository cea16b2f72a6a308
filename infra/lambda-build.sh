#!/usr/bin/env bash
# Builds the three Lambda functions with cargo-lambda (from .venv: `make venv`, with zig).
#
#   infra/lambda-build.sh debug   arm64|x86_64   # `make lambda-check`: do they build for Lambda?
#   infra/lambda-build.sh release arm64|x86_64   # `make build`: target/lambda/<bin>/bootstrap.zip
#
# arm64 needs the Rust standard library for aarch64-unknown-linux-gnu. ORGLINK_ARM64_TOOLCHAIN:
#   auto (default)  rustup's toolchain if it has that std, else Debian's (below)
#   rustup          rustup's only (`rustup target add aarch64-unknown-linux-gnu`); fails if absent
#   debian          Debian's rustc-web with its arm64 std, unpacked into .tools/ by
#                   infra/fetch-arm64-rust.sh (no root install). This project's machines need it:
#                   rustup cannot download targets there. It is another compiler version than
#                   rustup's, so it builds in its own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:?usage: infra/lambda-build.sh debug|release arm64|x86_64}
arch=${2:?usage: infra/lambda-build.sh debug|release arm64|x86_64}
packages=(-p orglink-intake -p orglink-sync-worker -p orglink-reconcile)

export PATH="$PWD/.venv/bin:$PATH"
command -v cargo-lambda >/dev/null || {
	echo "cargo-lambda is not in .venv: run 'make venv'" >&2
	exit 1
}

args=(lambda build "${packages[@]}")
[[ $profile == release ]] && args+=(--release --output-format zip)
# The debug check proves the functions compile and link for Lambda; debug info would only
# make it slower (and the intake binary about 250 MB).
[[ $profile == debug ]] && export CARGO_PROFILE_DEV_DEBUG=0
[[ $profile == debug || $profile == release ]] || {
	echo "profile must be debug or release, not '$profile'" >&2
	exit 2
}

case $arch in
x86_64)
	args+=(--x86-64)
	;;
arm64)
	args+=(--arm64)
	target=aarch64-unknown-linux-gnu
	toolchain=${ORGLINK_ARM64_TOOLCHAIN:-auto}
	has_std() { ls "$(rustc --print target-libdir --target $target 2>/dev/null)"/libstd-* >/dev/null 2>&1; }
	if [[ $toolchain != debian ]] && has_std; then
		: # the active (rustup) toolchain has the aarch64 std
	elif [[ $toolchain == debian || $toolchain == auto ]]; then
		infra/fetch-arm64-rust.sh
		export RUSTC="$PWD/.tools/rust-arm64/rustc"
		export CARGO_TARGET_DIR="$PWD/target/arm64-debian-rustc"
		# rustup's target check would try to download the std it cannot reach.
		args+=(--skip-target-check)
		echo "lambda-build: arm64 with $("$RUSTC" --version) (Debian rustc-web) into $CARGO_TARGET_DIR" >&2
	else
		cat >&2 <<EOF
lambda-build: cannot build for arm64: the Rust standard library for $target is not installed
for $(rustc --version) (looked in $(rustc --print sysroot)/lib/rustlib/$target/lib).
  - With rustup and network access: rustup target add $target
  - On a machine without (this project's): ORGLINK_ARM64_TOOLCHAIN=debian (or auto, the
    default) builds with Debian's rustc-web and its arm64 std (infra/fetch-arm64-rust.sh)
  - Or build for x86_64 and deploy with Architecture=x86_64: make build ARCH=x86_64
EOF
		exit 1
	fi
	;;
*)
	echo "arch must be arm64 or x86_64, not '$arch'" >&2
	exit 2
	;;
esac

cargo "${args[@]}"

if [[ $profile == release ]]; then
	dir=${CARGO_TARGET_DIR:-target}/lambda
	for bin in intake sync-worker reconcile; do
		zip=$dir/$bin/bootstrap.zip
		printf 'lambda-build: %s %s: %s: %s bytes zipped, %s bytes unzipped\n' "$arch" "$bin" "$zip" \
			"$(stat -c %s "$zip")" \
			"$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")"
	done
fi
