#!/usr/bin/env bash
# Makes the Hadoop mini cluster runnable: Maven downloads the pinned Hadoop jars into ~/.m2,
# compiles the launcher and writes the runtime classpath into a cache outside the repository:
#
#   ${CANOPY_CACHE_DIR:-$HOME/.cache/canopy}/hadoop/<version>/
#       classpath.txt    dependency jars, ':'-separated
#       build/classes/   the compiled launcher (org.canopy.testcluster.CanopyMiniCluster)
#       stamp            hash of pom.xml + src/ that produced the above
#
# Idempotent: when the stamp matches and every jar is still there it does nothing.
# Prints the cache directory on stdout; Maven's output goes to <cache>/fetch.log.
# Needs: bash, java 17+, mvn (Maven Central reachable on a cold run).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' "$here/pom.xml" | head -n 1)"
if [ -z "$version" ]; then
  echo "fetch.sh: no <hadoop.version> in $here/pom.xml" >&2
  exit 1
fi
cache="${CANOPY_CACHE_DIR:-$HOME/.cache/canopy}/hadoop/$version"
mkdir -p "$cache"

inputs_hash() {
  (cd "$here" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d ' ' -f 1
}

is_fresh() {
  [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$want" ] || return 1
  [ -f "$cache/build/classes/org/canopy/testcluster/CanopyMiniCluster.class" ] || return 1
  [ -s "$cache/classpath.txt" ] || return 1
  # A cleaned ~/.m2 must trigger a new fetch, not a ClassNotFoundException later.
  local jar IFS=:
  for jar in $(cat "$cache/classpath.txt"); do
    [ -e "$jar" ] || return 1
  done
}

want="$(inputs_hash)"
if is_fresh; then
  echo "$cache"
  exit 0
fi

# Several test processes may start at once; only one runs Maven, the others then see it fresh.
exec 9>"$cache/.lock"
flock 9
if is_fresh; then
  echo "$cache"
  exit 0
fi

for tool in mvn java; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "fetch.sh: '$tool' not found on PATH (need a JDK 17+ and Maven 3.6+)" >&2
    exit 1
  fi
done

rm -f "$cache/stamp"
log="$cache/fetch.log"
echo "fetch.sh: resolving Hadoop $version with Maven (log: $log)" >&2
if ! mvn -B -ntp -f "$here/pom.xml" \
    -Dcanopy.build.dir="$cache/build" \
    -Dmdep.outputFile="$cache/classpath.txt.tmp" \
    compile dependency:build-classpath >"$log" 2>&1; then
  echo "fetch.sh: Maven failed; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
mv "$cache/classpath.txt.tmp" "$cache/classpath.txt"
echo "$want" >"$cache/stamp"
echo "$cache"
