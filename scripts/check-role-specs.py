#!/usr/bin/env python3
"""Every role variable is role-prefixed, has a default in defaults/main.yml and an entry in
meta/argument_specs.yml, and the two agree (the spec's `default` is documentation: Ansible takes the value
from defaults/main.yml). Secret options (`no_log: true`) document no default, so none is compared."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[1] / "roles"


def problems_of(role: Path) -> list[str]:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    found = []
    for name in sorted(set(defaults) | set(options)):
        where = f"{role.name}: {name}"
        if not name.startswith(f"{role.name}_"):
            found.append(f"{where}: not prefixed with {role.name}_")
        if name not in defaults:
            found.append(f"{where}: in meta/argument_specs.yml but has no default in defaults/main.yml")
            continue
        if name not in options:
            found.append(f"{where}: in defaults/main.yml but missing from meta/argument_specs.yml")
            continue
        option = options[name]
        if not option.get("description"):
            found.append(f"{where}: no description in meta/argument_specs.yml")
        if option.get("no_log"):
            if "default" in option:
                found.append(f"{where}: a secret must not document a default (a failed validation prints it)")
        elif option.get("default") != defaults[name]:
            found.append(f"{where}: argument_specs default {option.get('default')!r} != defaults {defaults[name]!r}")
    return found


def main() -> int:
    problems = [p for role in sorted(ROLES.iterdir()) if (role / "defaults").is_dir() for p in problems_of(role)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"role specs: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
