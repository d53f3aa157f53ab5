"""What the name of a person or a group must look like to be written into a cluster's access rules.

A user or group name given a role in Canopy reaches places where some characters mean something:

- YARN queue ACLs (`acl_submit_applications`, `acl_administer_queue`) read "user1,user2 group1,group2":
  ',' separates names, the first space separates users from groups, a leading space means groups
  only and "*" alone means everyone (Hadoop's `AccessControlList`). A group named "*" would open
  the queue to everyone; a user named "alice ops" would add the group "ops".
- HDFS ACL specs read "user:alice:rwx,group:devs:r-x,default:group:devs:r-x": ',' separates
  entries and ':' fields (Hadoop's `AclEntry.parseAclSpec`); an entry without a name is the owner's
  or the owning group's. A group named "devs:rwx,default:other:" would add "default:other::rwx".
- Kubernetes RBAC subjects on clusters that sign people in with OIDC: any string is a valid name,
  but names with ':' are the API server's own ("system:authenticated" is everyone signed in).
- The export files: a shell script run as the HDFS superuser and capacity-scheduler.xml.

So one rule, for every backend a name can reach (a name accepted anywhere is safe everywhere):

    [A-Za-z0-9_][A-Za-z0-9._-]*   at most 150 characters

Where it comes from: POSIX.1-2017 (Base Definitions, chapter 3, "User Name" and "Group Name")
makes portable user and group names from the portable filename character set (A-Z a-z 0-9 . _ -),
not starting with '-'; the same characters are all that WebHDFS accepts in a name inside an ACL
spec by default (`dfs.webhdfs.acl.provider.permission.pattern` in Hadoop 3.4.2's hdfs-default.xml:
`[A-Za-z0-9._-]`), so the NameNode takes every name Canopy sends. A leading '.' is refused too ("."
and ".." read as paths), and 150 characters is the length of Django's user and group name columns.
No '*', ',', ':', '~', '@', spaces, quotes, control characters or letters outside ASCII.

Names are refused where they enter Canopy (tenants.services.membership_grant, user_create,
user_update, user_groups_mirror, the admin's user and group forms) and skipped where a directory or
an identity provider supplies them (the sign-in backends, before they mirror the groups); the
desired-state renderers leave out any name that breaks the rule (a row written before the rule
existed), saying so in the sync status. docs/security.md, "What is validated where".
"""

from __future__ import annotations

import re

NAME_MAX = 150
NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_NAME = re.compile(NAME_PATTERN)
RULE = (
    "use only letters a-z and A-Z, digits, '_', '.' and '-', not starting with '.' or '-', "
    f"at most {NAME_MAX} characters"
)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be written into a cluster's ACLs or role bindings; None when it can."""
    if not isinstance(name, str) or not name:
        return "A user or group name cannot be empty."
    if len(name) <= NAME_MAX and _NAME.fullmatch(name):
        return None
    shown = name if len(name) <= 60 else f"{name[:60]}..."
    return (
        f"{shown!r} cannot be used as a user or group name on the clusters (YARN and HDFS ACLs, "
        f"Kubernetes role bindings): {RULE}."
    )


def is_cluster_name(name: str) -> bool:
    return name_problem(name) is None
