"""``python -m demo [--dynamodb-local] [--in-process]``: the story of README's first command, on 127.0.0.1 only.

The functions run on the local Lambda runtime (RIE + awslambdaric, from `sam build`'s output in ``--build-dir``),
each invocation in a runtime process of its own function; ``--in-process`` imports them into this process instead
(faster; a timeout is then simulated). moto's server runs in this process (its DynamoDB item operations serialised,
as DynamoDB serialises writes to one item) and stands in for DynamoDB, SQS and SES; with ``--dynamodb-local`` the
tables live in the real DynamoDB Local instead. Credentials are fake; nothing reaches AWS. Exits 1 if any invariant
failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack, closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dynamodb-local", action="store_true", help="keep the tables in DynamoDB Local (Java)")
    parser.add_argument("--in-process", action="store_true", help="run the functions in this process (faster)")
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build", help="sam build's output")
    args = parser.parse_args(argv)
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("lambda_idempotency").setLevel(logging.ERROR)

    from lambda_idempotency.testing import dynamodb_local, moto_server

    from .stack import LocalStack
    from .story import Story

    with ExitStack() as running:
        aws = running.enter_context(moto_server())
        dynamodb = running.enter_context(dynamodb_local()) if args.dynamodb_local else aws
        print(f"Local AWS (moto server): {aws}; DynamoDB: {dynamodb}\n")
        stack = LocalStack.create(dynamodb_endpoint=dynamodb, aws_endpoint=aws)
        stack.overrides = {"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true"}
        functions = None
        if not args.in_process:
            from .runtime import RuntimeFunctions

            functions = running.enter_context(closing(RuntimeFunctions(stack, args.build_dir)))
            print(f"Functions on the Lambda runtime (RIE), from {args.build_dir}\n")
        ok = Story(stack, functions=functions).run()
    print("All invariants held." if ok else "Some invariants FAILED.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
