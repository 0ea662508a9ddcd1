"""Every shell line the README and the docs pages of the local story show is run or checked here (issue 12, item 3),
and the test says which.

Run as written: `make serve` and the `curl` under it (on a free port instead of 3000: the only change), and the
`lambda-idempotency` commands (against moto's server through ``AWS_ENDPOINT_URL_DYNAMODB``, each optional
``[...]`` part left out and put in). Checked, not run: `make test` (it is the command running this test) and the
other make targets, with `make -n` (they resolve, and to what); `pip install` lines, by the extras they name
(nothing is downloaded in a test); the deploy story (`sam build && sam deploy`, `sam local invoke`, curl on the
deployed `$ApiUrl`), which needs an AWS account or Docker: `sam build` itself runs in tests/test_template.py.
A README line that no check covers fails `test_every_shell_line_is_covered`.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from lambda_idempotency import DynamoDBStore, idempotent_function

from .doc_examples import ROOT, doc_pages, make_environment, shell_blocks

BIN = Path(sys.executable).parent
OPTIONAL = re.compile(r"\s*\[([^\]]+)\]")
INLINE = re.compile(r"`((?:[A-Z_]+=\S+ )*(?:make|pip install|\.venv/bin/\S+|lambda-idempotency|sam|curl) [^`]*|make)`")


def commands(source: str) -> list[str]:
    """A shell block's commands: continuations joined, comments and blank lines dropped."""
    joined = source.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            out.append(re.sub(r"\s+", " ", command))
    return out


STORY_PAGES = {
    "README.md",
    "getting-started.md",
    "how-it-works.md",
    "http.md",
    "exactly-once.md",
    "storage.md",
    "queues-and-streams.md",
    "operations.md",
    "testing.md",
    "deploying.md",
}
"""The README (the landing page) and the docs site's pages its content moved to: the local story's shell lines."""


def story_pages() -> list[Path]:
    return [page for page in doc_pages() if page.name in STORY_PAGES and page.parent in (ROOT, ROOT / "docs")]


def readme_block_commands() -> list[str]:
    pages = story_pages()
    return [c for block in shell_blocks() if block.path in pages for c in commands(block.source)]


def readme_inline_commands() -> list[str]:
    """Commands in backticks in the prose; one wrapped across lines is one command."""
    pages = story_pages()
    return sorted({re.sub(r"\s+", " ", c) for page in pages for c in INLINE.findall(page.read_text(encoding="utf-8"))})


def make_dry_run(*targets: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *targets],
        cwd=ROOT,
        env=make_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


DEPLOY_STORY = ("sam build && sam deploy", "sam build && sam local invoke", "curl $ApiUrl", "sam deploy")
TEMPLATE_CHECKS = ("sam build", "sam validate --lint")
"""Named in prose; tests/test_template.py runs both on template.yaml."""
MAKE_LINE = re.compile(r"^make (?P<target>[\w-]+)(?P<variables>(?: [A-Z_]+=\S+)*)$")


def coverage_of(command: str) -> str:
    """Which check covers ``command`` (the name of a test below), or '' for none."""
    if command == "sam local":
        return "named in prose (sam local needs Docker): test_sam_local_invoke_answers_as_the_local_runtime"
    if command.startswith(DEPLOY_STORY):
        return "deploy story: not run locally (needs AWS or Docker); sam build runs in test_template.py"
    if command in TEMPLATE_CHECKS:
        return "tests/test_template.py"
    if command == "sam build IdempotencyLayer":
        return "make release-check (its dist target zips the layer from this build; tests/test_release.py)"
    if command == "make serve" or command.startswith("curl -i -H 'Idempotency-Key: order-1'"):
        return "test_make_serve_and_the_curl_under_it"
    if command.startswith("lambda-idempotency ") or command.startswith("export LAMBDA_IDEMPOTENCY_TABLE="):
        return "test_the_operator_commands"
    if command.startswith(("moto_server ", "export AWS_ENDPOINT_URL=")):
        return "test_the_local_endpoint_lines"
    if command.startswith("pip install"):
        return "test_pip_install_lines_name_extras_that_exist"
    if command == ".venv/bin/python bench/cold_start.py":
        return "test_make_targets_resolve"
    if command == "PYENV_VERSION=3.12.1 .venv/bin/python bench/run.py --layer-only":
        return "test_bench_options_exist (the measure itself builds layers with sam: make bench's job)"
    if MAKE_LINE.match(command) or command == "make":
        return "test_make_targets_resolve"
    return ""


def test_every_shell_line_is_covered() -> None:
    lines = readme_block_commands() + readme_inline_commands()
    uncovered = [line for line in lines if not coverage_of(line)]
    assert not uncovered, f"README shell lines no test runs or checks (add them to {__file__}): {uncovered}"
    assert len(readme_block_commands()) >= 9


def test_make_targets_resolve() -> None:
    lines = readme_block_commands() + readme_inline_commands()
    runs = sorted({(m["target"], *m["variables"].split()) for line in lines if (m := MAKE_LINE.match(line))})
    assert {"demo", "test", "test-long", "serve", "bench", "demo-dynamodb-local"} <= {run[0] for run in runs}
    for run in runs:
        make_dry_run(*run)
    assert f"{BIN.name}/python -m demo" in make_dry_run("demo")  # the story itself runs in tests/test_demo.py
    test = make_dry_run("test")
    assert "ruff check ." in test and "mypy" in test and "pytest" in test
    assert (ROOT / "bench" / "cold_start.py").is_file()


def test_pip_install_lines_name_extras_that_exist() -> None:
    extras = set(importlib.metadata.metadata("lambda-idempotency").get_all("Provides-Extra") or [])
    named = set()
    for line in readme_inline_commands() + readme_block_commands():
        if line.startswith("pip install"):
            target = line.removeprefix("pip install").strip().strip("\"'")
            assert target == "." or target.startswith(".["), f"{line}: install from a clone until a release exists"
            named |= set(re.findall(r"[\w-]+", target.partition("[")[2]))
    assert named and named <= extras, (named, extras)


def test_make_serve_and_the_curl_under_it(served_api: str) -> None:
    """`served_api` is `make serve PORT=<free port>` (tests/conftest.py); the curl line runs on that port."""
    (curl,) = [c for c in readme_block_commands() if c.startswith("curl ")]
    port = served_api.rsplit(":", 1)[1]
    line = curl.replace("localhost:3000", f"localhost:{port}")
    first, second = (
        subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60, check=True).stdout
        for _ in range(2)
    )
    assert first.startswith("HTTP/1.1 201"), first
    assert second.startswith("HTTP/1.1 201") and "idempotent-replayed: true" in second.lower(), second
    assert first.split("\n\n", 1)[1] == second.split("\n\n", 1)[1]  # the same payment, replayed


def variants(command: str) -> Iterator[str]:
    """The command with its ``[...]`` parts all left out, then all put in."""
    yield re.sub(r"\s+", " ", OPTIONAL.sub("", command)).strip()
    if OPTIONAL.search(command):
        yield re.sub(r"\s+", " ", OPTIONAL.sub(lambda m: " " + m[1], command)).strip()


def test_the_operator_commands(moto_endpoint: str) -> None:
    lines = [c for c in readme_block_commands() if c.startswith("lambda-idempotency ")]
    creates = [line for line in lines if line.startswith("lambda-idempotency create-table --table ")]
    exports = [c for c in readme_block_commands() if c.startswith("export LAMBDA_IDEMPOTENCY_TABLE=")]
    assert len(exports) == 1  # the operations page's: the lines without --table read it
    table = exports[0].split("=", 1)[1]
    assert f"lambda-idempotency create-table --table {table}" in creates  # ...and it names a table the page makes
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint, "LAMBDA_IDEMPOTENCY_TABLE": table}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    assert shutil.which("lambda-idempotency", path=env["PATH"])

    def run(line: str, answer: str = "") -> None:
        result = subprocess.run(
            line, shell=True, env=env, input=answer, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, (line, result.stdout, result.stderr)

    for line in creates:
        run(line)
    store = DynamoDBStore(table, endpoint_url=moto_endpoint, region_name="us-east-1")
    unscoped = idempotent_function(store, key="key", operation="orders.create")(lambda key: "created")
    scoped = idempotent_function(store, key="key", operation="orders.create", scope=lambda key: "tenant-a")(
        lambda key: "created"
    )
    for create in (unscoped, scoped):  # the records the README's show/delete lines name
        create("ORDER-17")
    for line in lines:
        if line not in creates:
            for command in variants(line):
                run(command, answer="y\n")
    assert list(itertools.islice(variants("a [--b c]"), 2)) == ["a", "a --b c"]


def test_bench_options_exist() -> None:
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0 and "--layer-only" in result.stdout, result.stderr


def test_the_local_endpoint_lines() -> None:
    """Getting started without an AWS account: the moto_server and export lines, as written (on a free port), then
    the page's create-table line and a decorated call against that endpoint."""
    from lambda_idempotency.testing import free_port

    lines = readme_block_commands()
    server = next(c for c in lines if c.startswith("moto_server "))
    export = next(c for c in lines if c.startswith("export AWS_ENDPOINT_URL="))
    create = next(c for c in lines if c.startswith("lambda-idempotency create-table --table IdempotencyTable"))
    port = str(free_port())
    assert server.endswith(" -p 5000 &") and ":5000" in export
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.update(pair.split("=", 1) for pair in export.removeprefix("export ").replace(":5000", f":{port}").split())
    moto = subprocess.Popen(
        server.removesuffix(" &").replace("-p 5000", f"-p {port}").split(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        script = (
            "import socket, time\n"
            "deadline = time.monotonic() + 60\n"
            "while True:\n"
            "    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=1).close(); break\n"
            "    except OSError:\n"
            "        assert time.monotonic() < deadline; time.sleep(0.1)\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=90)
        done = subprocess.run(create, shell=True, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, (done.stdout, done.stderr)
        call = (
            "from lambda_idempotency import DynamoDBStore, idempotent_function\n"
            "runs = []\n"
            "@idempotent_function(DynamoDBStore('IdempotencyTable'), key='order_id')\n"
            "def send(order_id): runs.append(order_id); return 'sent'\n"
            "assert send('o-1') == send('o-1') == 'sent' and runs == ['o-1']\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", call], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def test_the_test_long_comment_names_every_command_make_runs() -> None:
    """docs/reliability.md spells `make test-long` out as its pytest runs; it left out the third, the lease model at a
    longer horizon. Each run's marker, profile, variables and test files are in the comment."""
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    found = re.search(r"^make test-long +#(?P<comment>.*(?:\n +#.*)*)", page, re.MULTILINE)
    assert found, "reliability.md spells out make test-long"
    comment = found["comment"]
    runs = [line for line in make_dry_run("test-long").splitlines() if "pytest" in line]
    assert len(runs) >= 3
    for run in runs:
        named = re.findall(r"\b[A-Z_]+=\S+|-m \w+|--hypothesis-profile=\w+|tests/\S+\.py", run)
        assert named and all(part in comment for part in named), (run, named)
