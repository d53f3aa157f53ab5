#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and etcd from the Go module proxy, at the
# versions pinned in go.mod next to this script, into a cache outside the repository:
#
#   ${CANOPY_CACHE_DIR:-$HOME/.cache/canopy}/kubernetes/<k8s-version>/bin/
#
# Idempotent: when the binaries for the pinned versions are already there it does nothing.
# The last line printed on stdout is always the bin directory.
# Needs Go >= the go directive in go.mod on PATH (or at /usr/local/go/bin).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The pinned versions are read from go.mod, the single source of truth.
module_version() {
	awk -v mod="$1" '
		$1 == "require" { $1 = ""; $0 = $0 }
		$1 == mod && $2 ~ /^v[0-9]/ { print $2; exit }
	' "$here/go.mod"
}
k8s_version="$(module_version k8s.io/kubernetes)"
etcd_version="$(module_version go.etcd.io/etcd/server/v3)"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
	echo "build.sh: cannot read the k8s.io/kubernetes or etcd version from $here/go.mod" >&2
	exit 1
fi

cache_root="${CANOPY_CACHE_DIR:-$HOME/.cache/canopy}/kubernetes/$k8s_version"
bin_dir="$cache_root/bin"
stamp="$bin_dir/BUILD-INFO"
# The stamp names what was built with which versions; a change to either (a new binary, a new
# pin) makes the next run rebuild once. kube.py's ensure_binaries() compares the same text.
want_stamp="kubernetes=$k8s_version etcd=$etcd_version binaries=kube-apiserver,kube-controller-manager,kube-scheduler,etcd"

is_built() {
	[[ -x "$bin_dir/kube-apiserver" && -x "$bin_dir/kube-controller-manager" && -x "$bin_dir/kube-scheduler" ]] &&
		[[ -x "$bin_dir/etcd" && "$(cat "$stamp" 2>/dev/null)" == "$want_stamp" ]]
}

if is_built; then
	echo "build.sh: Kubernetes $k8s_version and etcd $etcd_version already built, nothing to do" >&2
	echo "$bin_dir"
	exit 0
fi

mkdir -p "$cache_root"
# Serialise concurrent builds (e.g. two test sessions starting at once): the second waits
# and then finds the binaries built.
exec 9>"$cache_root/.build.lock"
flock 9
if is_built; then
	echo "build.sh: built by a concurrent run, nothing to do" >&2
	echo "$bin_dir"
	exit 0
fi

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { echo "build.sh: Go is not installed" >&2; exit 1; }

# Static binaries, the local toolchain only, and this module alone even if a go.work is
# above it; -mod=readonly so a stale go.sum fails loudly instead of being rewritten.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=readonly

# Without these the servers report v0.0.0-master; the variable names are those set by
# hack/lib/version.sh in the Kubernetes release.
minor="${k8s_version#v*.}"
minor="${minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

# Build into a scratch directory and move it into place last, so an interrupted build
# never leaves a bin directory that looks complete.
work="$(mktemp -d "$cache_root/.bin.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$here"
echo "build.sh: building Kubernetes $k8s_version (kube-apiserver, kube-controller-manager, kube-scheduler) with $(go version)" >&2
start=$SECONDS
go build -trimpath -ldflags "$ldflags" -o "$work/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler
echo "build.sh: Kubernetes built in $((SECONDS - start))s; building etcd $etcd_version" >&2
start=$SECONDS
go build -trimpath -ldflags "-s -w" -o "$work/etcd" ./etcd
echo "build.sh: etcd built in $((SECONDS - start))s" >&2

echo "$want_stamp" >"$work/BUILD-INFO"
rm -rf "$bin_dir"
chmod 755 "$work"
mv "$work" "$bin_dir"
trap - EXIT
"$bin_dir/kube-apiserver" --version >&2
"$bin_dir/etcd" --version >&2
echo "$bin_dir"
