"""Run by the Makefile before anything else: is $(PYTHON) new enough, and was .venv made by it?

Prints ``ok`` or one line saying what is needed and what was found (the Makefile stops with it). A .venv made by
another Python version (an earlier run with the wrong one, a system upgrade) is removed, so the next step rebuilds
it. Written for old interpreters too, since it runs before the version is known to be right: no f-strings.
"""
# ruff: noqa: UP031

import os
import shutil
import sys


def venv_version(venv):
    """The "major.minor" of the Python that made ``venv`` (its pyvenv.cfg), or None when it cannot be read."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as config:
            for line in config:
                name, _, value = line.partition("=")
                if name.strip() in ("version", "version_info"):
                    return ".".join(value.strip().split(".")[:2])
    except OSError:
        return None
    return None


def main(argv):
    minimum, venv = argv[1], argv[2]
    needed = tuple(int(part) for part in minimum.split("."))
    found = "%d.%d.%d" % sys.version_info[:3]
    if tuple(sys.version_info[: len(needed)]) < needed:
        print(
            "lambda-idempotency needs Python >= %s; found Python %s at %s (run make PYTHON=python3.X)"
            % (minimum, found, sys.executable)
        )
        return
    mine = "%d.%d" % sys.version_info[:2]
    made_by = venv_version(venv) if os.path.isdir(venv) else mine
    if made_by != mine:
        shutil.rmtree(venv)
        sys.stderr.write("%s was made by Python %s, not %s: removed, it will be rebuilt\n" % (venv, made_by, mine))
    print("ok")


if __name__ == "__main__":
    main(sys.argv)
