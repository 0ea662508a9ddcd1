"""The release's artifacts, as `make release-check` builds them and the release workflow publishes them.

`make release-check` builds the sdist and the wheel into dist/ (`python -m build`, then `twine check --strict`) and
the layer zip from `sam build`'s output, then runs these tests on them (marker ``release``; the plain suite skips
them). The wheel is installed into a fresh virtualenv, outside the repository, and runs the README's first example
against moto, as a user who typed `pip install lambda-idempotency` would.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.release

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "layers" / "idempotency" / "lambda_idempotency"
DIST = ROOT / "dist"
FRESH_VENV_PINS = ["moto==5.2.5", "boto3==1.44.8", "botocore==1.44.8"]
"""What the example needs besides the wheel, at the versions requirements-dev.txt pins."""


def package_version() -> str:
    """``__version__`` as written in the package: the one place a release sets it."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            return str(ast.literal_eval(node.value))
    raise AssertionError("lambda_idempotency/__init__.py sets no __version__")


VERSION = package_version()


def only(pattern: str, folder: Path) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder} (run `make release-check`), found {found}"
    return found[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return only("*.whl", DIST)


def test_the_version_is_0_2_0_and_both_artifacts_carry_it(wheel: Path) -> None:
    assert VERSION == "0.2.0"
    assert wheel.name == f"lambda_idempotency-{VERSION}-py3-none-any.whl"
    assert only("*.tar.gz", DIST).name == f"lambda_idempotency-{VERSION}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"lambda_idempotency-{VERSION}.dist-info/METADATA").decode()
    assert f"\nVersion: {VERSION}\n" in metadata
    assert "\nRequires-Dist: boto3>=1.34\n" in metadata
    assert "Description-Content-Type: text/markdown" in metadata


def test_the_wheel_holds_the_whole_package_and_nothing_else(wheel: Path) -> None:
    expected = {
        f"lambda_idempotency/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"lambda_idempotency-{VERSION}.dist-info/entry_points.txt").decode()
    package_files = {name for name in names if not name.startswith(f"lambda_idempotency-{VERSION}.dist-info/")}
    assert package_files == expected
    assert "lambda_idempotency/py.typed" in names, "the type hints ship (PEP 561)"
    assert "lambda-idempotency = lambda_idempotency.cli:main" in entry_points


def test_the_sdist_builds_the_same_package() -> None:
    with tarfile.open(only("*.tar.gz", DIST)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"} <= names
    assert "layers/idempotency/lambda_idempotency/__init__.py" in names
    assert not {name for name in names if name.startswith(("tests/", "demo/", "bench/"))}


def test_the_sdist_holds_the_package_and_the_projects_own_files_only() -> None:
    """hatch reads `include` as gitignore patterns: a bare "README.md" also took docs/benchmarks/README.md, a page of
    the docs site whose links are broken outside the repository. The sdist holds the package, the four files it
    names and what hatch always adds (PKG-INFO, .gitignore)."""
    package = {
        f"layers/idempotency/lambda_idempotency/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with tarfile.open(only("*.tar.gz", DIST)) as archive:
        names = {
            name.split("/", 1)[1] for name in archive.getnames() if "/" in name and archive.getmember(name).isfile()
        }
    own = {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "PKG-INFO", ".gitignore"}
    assert names - package == own


def first_readme_example() -> str:
    match = re.search(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    assert match, "README.md has no python example"
    return match.group(1)


FRESH_PROGRAM = """
import os, sys
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
from importlib.metadata import version
from moto import mock_aws
import lambda_idempotency
from lambda_idempotency import DynamoDBStore, create_table

print(lambda_idempotency.__file__)
assert lambda_idempotency.__version__ == version("lambda-idempotency"), lambda_idempotency.__version__
with mock_aws():
    create_table(DynamoDBStore("IdempotencyTable"))
    exec(compile(sys.stdin.read(), "README.md", "exec"), {"__name__": "readme"})
print("README example ran")
"""


def test_the_wheel_installs_in_a_fresh_venv_and_runs_the_readme_example(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # This suite's pip installs into the new venv (--python): the venv needs no pip of its own, and stays empty of
    # anything but the wheel, its dependency and moto.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel), *FRESH_VENV_PINS], check=True, timeout=300, cwd=tmp_path)
    # -I: no PYTHONPATH, no user site, no script directory; the cwd is outside the repository.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PYTHON"))}
    done = subprocess.run(
        [str(python), "-I", "-c", FRESH_PROGRAM],
        check=False,
        input=first_readme_example(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    installed_at, ran = done.stdout.splitlines()[-2:]
    assert installed_at.startswith(str(venv / "lib")), f"imported from {installed_at}, not from the installed wheel"
    assert ran == "README example ran"


def test_the_layer_zip_is_what_lambda_unpacks_into_opt() -> None:
    layer = only(f"lambda-idempotency-layer-{VERSION}.zip", ROOT / "build")
    with zipfile.ZipFile(layer) as archive:
        names = set(archive.namelist())
    assert "python/lambda_idempotency/__init__.py" in names
    assert "python/lambda_idempotency/__pycache__/__init__.cpython-312.pyc" in names, "the layer ships bytecode"
    assert "python/aws_lambda_powertools/__init__.py" in names
    assert not {name for name in names if name.startswith("python/boto3/")}, "boto3 is in the Lambda runtime"
