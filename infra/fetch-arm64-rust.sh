#!/usr/bin/env bash
# Unpacks a Rust compiler that can build for aarch64-unknown-linux-gnu into .tools/rust-arm64,
# for machines where rustup cannot add the aarch64 standard library (this project's have no
# network beyond the package registries). From Debian's packages, with apt's ordinary client,
# without installing anything system-wide (private package lists, packages unpacked with dpkg-deb):
#
#   rustc-web, libstd-rust-web-<ver>, libstd-rust-web-dev (host: x86_64), libllvm<N>
#   libstd-rust-web-dev:arm64 (the aarch64 standard library of the same compiler)
#
# Debian's rustc-web follows Rust stable at its own pace (1.96 when this was written, while
# rustup's toolchain here is 1.95), so it is a complete second compiler, not an add-on to
# rustup's: infra/lambda-build.sh builds with it in its own target directory. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$PWD/.tools/rust-arm64
[[ -x $dest/rustc ]] && "$dest/rustc" --print target-libdir --target aarch64-unknown-linux-gnu >/dev/null 2>&1 &&
	ls "$dest"/root/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib/libstd-* >/dev/null 2>&1 && exit 0

[[ $(dpkg --print-architecture) == amd64 ]] || {
	echo "fetch-arm64-rust: only written for an amd64 (x86_64) host" >&2
	exit 1
}
rm -rf "$dest"
mkdir -p "$dest"/apt/lists/partial "$dest"/apt/cache/archives/partial "$dest"/debs "$dest"/root
apt=(-o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt/cache"
	-o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64" -o "APT::Sandbox::User=root")
# A source the machine lists but cannot reach only warns; what matters is found below.
apt-get "${apt[@]}" -qq update >"$dest/apt/update.log" 2>&1 || true

field() { apt-cache "${apt[@]}" show "$1" | awk -v f="$2:" '$1 == f { sub(/^[^:]*: /, ""); print; exit }'; }
version=$(apt-cache "${apt[@]}" policy rustc-web | awk '/Candidate:/ { print $2 }')
[[ -n $version && $version != "(none)" ]] || {
	echo "fetch-arm64-rust: Debian's rustc-web is not available from this machine's package sources" >&2
	exit 1
}
std=$(field "libstd-rust-web-dev=$version" Depends | grep -o 'libstd-rust-web-[0-9.]*' | head -1)
llvm=$(field "$std=$version" Depends | grep -o 'libllvm[0-9]*' | head -1)
(cd "$dest/debs" && apt-get "${apt[@]}" -qq download \
	"rustc-web=$version" "libstd-rust-web-dev=$version" "$std=$version" "$llvm" \
	"libstd-rust-web-dev:arm64=$version")
for deb in "$dest"/debs/*.deb; do dpkg-deb -x "$deb" "$dest/root"; done

cat >"$dest/rustc" <<EOF
#!/bin/sh
# Debian's rustc-web $version, unpacked by infra/fetch-arm64-rust.sh.
LD_LIBRARY_PATH="$dest/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dest/root/usr/bin/rustc" "\$@"
EOF
chmod +x "$dest/rustc"
rm -rf "$dest/apt" "$dest/debs"
echo "fetch-arm64-rust: $("$dest/rustc" --version) with the aarch64-unknown-linux-gnu std in $dest" >&2
