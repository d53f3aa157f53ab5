#!/usr/bin/env bash
# Build Kueue's controller manager and KWOK from the Go module proxy, at the versions pinned in
# versions.env next to this script, and copy the manifests the test cluster needs out of the
# module cache, into a cache outside the repository:
#
#   ${CANOPY_CACHE_DIR:-$HOME/.cache/canopy}/kueue/<kueue-version>-kwok-<kwok-version>/
#     bin/kueue, bin/kwok
#     manifests/crd/*.yaml          Kueue's CRDs (config/components/crd/bases)
#     manifests/crd-patches/*.yaml  the conversion-webhook patches Kueue's kustomization applies
#     manifests/webhook/*.yaml      Kueue's webhook configurations and their kustomization
#     manifests/rbac/*.yaml         Kueue's ClusterRoles, Roles and bindings
#     manifests/kwok-stages/*.yaml  KWOK's own node and pod stages (kustomize/stage/...)
#
# kube-scheduler comes from ../kubernetes/build.sh (the Kubernetes version the suite pins).
# Idempotent: when everything for the pinned versions is there it does nothing.
# The last line printed on stdout is always the cache directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
if [[ -z "${KUEUE_VERSION:-}" || -z "${KWOK_VERSION:-}" ]]; then
	echo "kueue/build.sh: KUEUE_VERSION or KWOK_VERSION missing from $here/versions.env" >&2
	exit 1
fi

cache_root="${CANOPY_CACHE_DIR:-$HOME/.cache/canopy}/kueue"
out_dir="$cache_root/$KUEUE_VERSION-kwok-$KWOK_VERSION"
# Two stamps: the binaries (minutes to build) and the manifests copied out of the modules
# (seconds), so a change to what is copied never rebuilds the binaries.
bin_stamp="kueue=$KUEUE_VERSION kwok=$KWOK_VERSION"
manifest_stamp="kueue=$KUEUE_VERSION kwok=$KWOK_VERSION set=crd,crd-patches,webhook,rbac,kwok-stages"

bin_built() {
	[[ -x "$out_dir/bin/kueue" && -x "$out_dir/bin/kwok" ]] &&
		[[ "$(cat "$out_dir/bin/BUILD-INFO" 2>/dev/null)" == "$bin_stamp" ]]
}
manifests_copied() {
	[[ "$(cat "$out_dir/manifests/MANIFESTS-INFO" 2>/dev/null)" == "$manifest_stamp" ]]
}

if bin_built && manifests_copied; then
	echo "kueue/build.sh: Kueue $KUEUE_VERSION and KWOK $KWOK_VERSION already built, nothing to do" >&2
	echo "$out_dir"
	exit 0
fi

mkdir -p "$out_dir"
# Serialise concurrent builds (two test sessions starting at once): the second waits and then
# finds everything built.
exec 9>"$cache_root/.build.lock"
flock 9

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { echo "kueue/build.sh: Go is not installed" >&2; exit 1; }

# Static binaries, the local toolchain only, and `go install pkg@version` builds each tool in
# its own module with that module's own go.mod and go.sum (nothing of ours, no go.work).
export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS=-buildvcs=false

# Each step works in a scratch directory moved into place last, so an interrupted build never
# leaves a directory that looks complete.
work=""
trap 'if [[ -n "$work" ]]; then rm -rf "$work"; fi' EXIT

if ! bin_built; then
	work="$(mktemp -d "$out_dir/.bin.XXXXXX")"
	cd "$work"
	echo "kueue/build.sh: building Kueue $KUEUE_VERSION with $(go version)" >&2
	start=$SECONDS
	# Without it the manager logs v0.0.0-main as its version (Kueue's Makefile sets the same).
	GOBIN="$work" go install -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" \
		"sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
	echo "kueue/build.sh: Kueue built in $((SECONDS - start))s; building KWOK $KWOK_VERSION" >&2
	start=$SECONDS
	GOBIN="$work" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
	echo "kueue/build.sh: KWOK built in $((SECONDS - start))s" >&2
	echo "$bin_stamp" >BUILD-INFO
	cd "$out_dir"
	rm -rf bin
	chmod 755 "$work"
	mv "$work" bin
	work=""
fi

if ! manifests_copied; then
	# The manifests of the very module versions built (in the module cache after a build;
	# `go mod download` fetches only the module's zip otherwise).
	module_dir() {
		go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
	}
	kueue_dir="$(module_dir sigs.k8s.io/kueue "$KUEUE_VERSION")"
	kwok_dir="$(module_dir sigs.k8s.io/kwok "$KWOK_VERSION")"
	components="$kueue_dir/config/components"
	[[ -d "$components/crd/bases" && -d "$kwok_dir/kustomize/stage" ]] || {
		echo "kueue/build.sh: cannot find the modules' manifests ($kueue_dir, $kwok_dir)" >&2
		exit 1
	}
	work="$(mktemp -d "$out_dir/.manifests.XXXXXX")"
	cd "$work"
	mkdir -p crd crd-patches webhook rbac kwok-stages
	cp "$components"/crd/bases/*.yaml crd/
	# Which CRDs get a conversion webhook is what the kustomization lists, so both are kept.
	cp "$components"/crd/kustomization.yaml "$components"/crd/patches/webhook_in_*.yaml crd-patches/
	cp "$components"/webhook/manifests.yaml "$components"/webhook/kustomization.yaml webhook/
	cp "$components"/rbac/*.yaml rbac/
	cp "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
		"$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		"$kwok_dir"/kustomize/stage/pod/fast/pod-ready.yaml \
		"$kwok_dir"/kustomize/stage/pod/fast/pod-delete.yaml \
		kwok-stages/
	# The module cache is read-only; the copies need not be.
	chmod -R u+w,go+rX .
	echo "$manifest_stamp" >MANIFESTS-INFO
	cd "$out_dir"
	rm -rf manifests
	mv "$work" manifests
	work=""
fi

"$out_dir/bin/kwok" --version >&2
echo "$out_dir"
