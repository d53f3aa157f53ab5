"""Pure desired state: database truth in (as plain dataclasses), manifests out."""
