"""Where desired manifests go: `kubernetes` (a live API server) or `export` (YAML files for GitOps),
behind the interface in `base`."""
