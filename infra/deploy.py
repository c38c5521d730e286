#!/usr/bin/env python3
"""Build the SAM template and deploy it to the local AWS emulator (ministack).

    .venv/bin/python infra/deploy.py deploy [--stage local]   build if sources changed, deploy
    .venv/bin/python infra/deploy.py validate                  sam validate --lint
    .venv/bin/python infra/deploy.py compile [--build-dir D]   bytecode into a `sam build`
    .venv/bin/python infra/deploy.py url [--stage local]       the deployed API's local URL
    .venv/bin/python infra/deploy.py delete [--stage local]

What a deploy to the emulator does, in order:
1. `sam build` into the state folder, only when template.yaml, the layer or a function changed
   (a hash of the sources is stamped beside the build), so a warm `make up` skips it; then every
   module of the build compiled to bytecode (`compile_bytecode`: sam build ships none).
2. Writes the configuration the template reads the way AWS would hold it: store endpoints as SSM
   parameters `/feed/<stage>/...`, passwords and the cursor secret as the Secrets Manager secret
   `feed/<stage>/stores`.
3. Publishes the local token key as a JWKS document in an emulator S3 bucket: the stack's JWT
   issuer is that bucket's URL, so the HTTP API's JWT authorizer finds the keys at
   `{issuer}/.well-known/jwks.json` like it would at a real identity provider. The key is
   added to the keys already there (another checkout's, e.g. a git worktree with its own
   `.state/keys`), so a deploy from one checkout leaves the others' tokens valid.
4. `sam deploy`, skipped when the stack already carries the same build and parameters (tag).

The AWS SAM CLI lives in its own virtualenv under ~/.cache/feedplatform (its pins would fight the
project's). Stacks are named `feed-<stage>`; `make up` deploys `local` over the development
databases, the end-to-end tests deploy `e2e` over databases of their own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from feed_wiring.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SAM_VERSION = "1.170.0"
TOOLS_DIR = Path(os.environ.get("FEED_TOOLS_DIR", Path.home() / ".cache" / "feedplatform"))
ARTIFACTS_BUCKET = "feed-sam-artifacts"
AUTH_BUCKET = "feed-local-auth"
BUILD_SOURCES = ("template.yaml", "layers/feed_core", "functions")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def log(msg: str) -> None:
    print(f"[deploy] {msg}", flush=True)


def ensure_sam() -> Path:
    """`sam` from PyPI in a venv of its own, installed once per machine (about 45 s)."""
    venv = TOOLS_DIR / f"aws-sam-cli-{SAM_VERSION}"
    exe = venv / "bin" / "sam"
    done = venv / ".feed-installed"
    if done.exists():
        return exe
    log(f"installing AWS SAM CLI {SAM_VERSION} into {venv} (first time only, about a minute)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"aws-sam-cli=={SAM_VERSION}"],
        check=True,
    )
    done.touch()  # last: an interrupted install is redone, not half used
    return exe


def sam_env() -> dict[str, str]:
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0.5",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    }


# Part of the build's digest: a change to how a build is made (bytecode) makes a new build even
# when the sources are the same.
BUILD_RECIPE = "sam-build+pyc-unchecked-hash"


def sources_digest() -> str:
    h = hashlib.sha256(BUILD_RECIPE.encode())
    for top in BUILD_SOURCES:
        base = ROOT / top
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in paths:
            if SKIP_PARTS.intersection(p.parts) or p.suffix == ".pyc":
                continue
            if any(part.endswith(".egg-info") for part in p.parts):
                continue  # pip install -e's metadata; sam build leaves it out of the layer too
            h.update(str(p.relative_to(ROOT)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def state_dir() -> Path:
    return Path(os.environ.get("FEED_STATE_DIR", ROOT / ".state")).resolve()


def build(sam: Path | None = None) -> tuple[Path, str]:
    """`sam build` unless these sources were built before; returns (build dir, digest).

    Builds live under the tools folder, one per source digest, so every checkout and state
    folder of this machine (make up, make test, a private stack) shares them; sam's own cache
    (the layer's installed dependencies) is shared the same way.
    """
    sam = sam or ensure_sam()
    base = TOOLS_DIR / "sam-builds"
    digest = sources_digest()
    build_dir = base / digest
    if (build_dir / "template.yaml").exists():
        return build_dir, digest
    log("sam build (the layer's dependencies come from PyPI; cached between builds)")
    t0 = time.monotonic()
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f"{digest}.tmp{os.getpid()}"
    out = subprocess.run(
        [
            str(sam),
            "build",
            "--template-file",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(tmp),
            "--cache-dir",
            str(base / "cache"),
            "--cached",
        ],
        check=False,
        cwd=base,  # sam keeps its dependency cache (.aws-sam/deps) under the working folder
        env=sam_env(),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(out.stdout + out.stderr, file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit("[deploy] sam build failed")
    compile_bytecode(tmp)
    if build_dir.exists():  # another process built the same sources meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(build_dir)
    _prune_builds(base, keep=build_dir)
    log(f"built in {time.monotonic() - t0:.1f} s")
    return build_dir, digest


# The runtime of every function in template.yaml: bytecode is per Python minor version.
LAMBDA_PYTHON = (3, 11)


def compile_bytecode(build_dir: Path) -> int:
    """Compile every module of a `sam build` output (the layer and the functions) in place.

    `sam build` ships sources only, and Lambda's /opt and /var/task are read-only: without .pyc
    every cold start compiles each module it imports (feed, traced: about 1.3 s instead of
    0.46 s here, bench/cold_start.py `from_sam_build`). unchecked-hash .pyc files are used as
    they are, whatever the files' times (a zip keeps mtimes to 2 s). Returns the number of .pyc
    files written; 0 (and a warning) if this Python is not the runtime's version."""
    if sys.version_info[:2] != LAMBDA_PYTHON:
        log(
            f"not compiling bytecode: Python {sys.version_info[0]}.{sys.version_info[1]} here, "
            f"{LAMBDA_PYTHON[0]}.{LAMBDA_PYTHON[1]} on Lambda"
        )
        return 0
    subprocess.run(
        [
            sys.executable,
            *("-m", "compileall", "-q", "-j", "0"),
            *("--invalidation-mode", "unchecked-hash"),
            str(build_dir),
        ],
        check=True,
    )
    return sum(1 for _ in build_dir.rglob("*.pyc"))


def _prune_builds(base: Path, keep: Path, count: int = 4) -> None:
    builds = sorted(
        (p for p in base.iterdir() if p.is_dir() and len(p.name) == 16 and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[count - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def validate(sam: Path | None = None) -> None:
    sam = sam or ensure_sam()
    subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(ROOT / "template.yaml")],
        check=True,
        cwd=ROOT,
        env=sam_env(),
    )


# ---------------------------------------------------------------------------------------------
# The emulator side


def aws(settings: Settings, service: str):
    import boto3

    return boto3.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def issuer_url(settings: Settings) -> str:
    """The local stacks' token issuer: an emulator S3 bucket that serves the JWKS."""
    return f"{settings.aws_endpoint_url}/{AUTH_BUCKET}"


JWKS_KEY = ".well-known/jwks.json"
JWKS_MAX_KEYS = 8


def merged_jwks(current: dict | None, mine: dict) -> dict:
    """The JWKS with this checkout's key first and the keys already published kept (up to
    JWKS_MAX_KEYS in all): every checkout of this machine (a worktree has its own .state/keys)
    publishes into the one issuer bucket, and replacing the document would make the tokens
    of every other checkout's stacks fail the authorizer."""
    kids = {k["kid"] for k in mine["keys"]}
    kept = [k for k in (current or {}).get("keys", []) if k.get("kid") not in kids]
    return {"keys": [*mine["keys"], *kept][:JWKS_MAX_KEYS]}


def publish_jwks(settings: Settings) -> str:
    from infra.mint_token import ensure_keypair, jwks_document

    s3 = aws(settings, "s3")
    s3.create_bucket(Bucket=AUTH_BUCKET)
    pair = ensure_keypair()
    try:
        current = json.loads(s3.get_object(Bucket=AUTH_BUCKET, Key=JWKS_KEY)["Body"].read())
    except (s3.exceptions.NoSuchKey, ValueError):
        current = None
    document = merged_jwks(current, jwks_document(pair.public_pem.read_bytes()))
    if document != current:
        s3.put_object(
            Bucket=AUTH_BUCKET,
            Key=JWKS_KEY,
            Body=json.dumps(document).encode(),
            ContentType="application/json",
        )
    return f"{issuer_url(settings)}/{JWKS_KEY}"


def store_config(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(SSM parameters under /feed/<stage>/, secret fields) for these store settings."""
    params = {
        "postgres/host": settings.postgres_host,
        "postgres/port": str(settings.postgres_port),
        "postgres/db": settings.postgres_db,
        "postgres/user": settings.postgres_user,
        "redis/host": settings.redis_host,
        "redis/port": str(settings.redis_port),
        "redis/db": str(settings.redis_db),
        "mongodb/db": settings.mongodb_db,
    }
    secret = {
        "postgres_password": settings.postgres_password,
        "mongodb_url": settings.mongodb_url,
        "cursor_secret": settings.cursor_secret,
    }
    return params, secret


def publish_config(settings: Settings, stage: str) -> dict[str, str]:
    """Write the SSM parameters and the secret; returns the template parameters naming them."""
    params, secret = store_config(settings)
    ssm = aws(settings, "ssm")
    for name, value in params.items():
        ssm.put_parameter(Name=f"/feed/{stage}/{name}", Value=value, Type="String", Overwrite=True)
    names = config_parameters(stage)
    sm = aws(settings, "secretsmanager")
    secret_name = names["StoreSecretName"]
    body = json.dumps(secret)
    try:
        sm.put_secret_value(SecretId=secret_name, SecretString=body)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=secret_name, SecretString=body)
    return names


# Template parameter -> its SSM parameter under /feed/<stage>/ (store_config's names).
CONFIG_PARAMETERS = {
    "PostgresHost": "postgres/host",
    "PostgresPort": "postgres/port",
    "PostgresDb": "postgres/db",
    "PostgresUser": "postgres/user",
    "RedisHost": "redis/host",
    "RedisPort": "redis/port",
    "RedisDb": "redis/db",
    "MongodbDb": "mongodb/db",
}


def config_parameters(stage: str) -> dict[str, str]:
    """The template parameters naming the SSM parameters and the secret publish_config writes."""
    return {
        **{k: f"/feed/{stage}/{v}" for k, v in CONFIG_PARAMETERS.items()},
        "StoreSecretName": f"feed/{stage}/stores",
    }


# The emulator's account unless the credentials name another (ministack: a 12-digit key id).
EMULATOR_ACCOUNT_ID = "000000000000"


def media_bucket_name(stage: str, account_id: str, region: str) -> str:
    """template.yaml's MediaBucket name."""
    return f"feed-{stage}-media-{account_id}-{region}"


def media_cdn_base(settings: Settings, stage: str, account_id: str) -> str:
    """MEDIA_CDN_BASE of an emulator stack: its bucket at the emulator's S3, path-style (its
    buckets are readable there; the distribution is reached only with a Host header)."""
    bucket = media_bucket_name(stage, account_id, settings.aws_region)
    return f"{(settings.aws_endpoint_url or '').rstrip('/')}/{bucket}"


def stack_parameters(
    settings: Settings, stage: str, jwks_url: str, account_id: str = EMULATOR_ACCOUNT_ID
) -> dict[str, str]:
    """The parameters of an emulator deploy besides config_parameters. The template's
    store-creating parameters (RedisNodeType, AuroraInstanceClass) stay at their empty
    defaults: the emulator gets the stores of these settings, never an ElastiCache or Aurora."""
    return {
        "Stage": stage,
        "JwtIssuer": issuer_url(settings),
        "JwtAudience": settings.jwt_audience,
        "JwtJwksUrl": jwks_url,
        "AwsEndpointUrl": settings.aws_endpoint_url or "",
        "CelebrityThreshold": str(settings.celebrity_threshold),
        "ActiveDays": str(settings.active_days),
        "TimelineMaxLen": str(settings.timeline_max_len),
        "EngagementRetentionDays": str(settings.engagement_retention_days),
        "AuthorListSilentDays": str(settings.author_list_silent_days),
        # REDIS_CLUSTER=true (a local Redis Cluster, TOPOLOGY=scaled): the functions too.
        "RedisCluster": "true" if settings.redis_cluster else "false",
        # POSTGRES_REPLICA_HOST (the local standby, TOPOLOGY=scaled): the functions read it too.
        "PostgresReplicaHost": settings.postgres_replica_host or "",
        "PostgresReplicaPort": str(settings.postgres_replica_port)
        if settings.postgres_replica_host
        else "",
        # The scheduled functions push their runs to the local Pushgateway (`make up` sets it).
        "PushgatewayUrl": settings.pushgateway_url or "",
        # Variant URLs at the emulator's S3 (the issue: "locally the emulator's S3 address").
        "MediaCdnBase": media_cdn_base(settings, stage, account_id),
    }


@dataclass
class Deployed:
    stage: str
    stack_name: str
    api_id: str
    api_url: str
    queue_url: str
    dlq_url: str
    issuer: str
    deployed: bool  # False when the stack was already up to date
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2)


def stack_name(stage: str) -> str:
    return f"feed-{stage}"


def local_api_url(settings: Settings, api_id: str) -> str:
    return f"{settings.aws_endpoint_url}/_aws/execute-api/{api_id}/$default"


def _stack(cfn, name: str) -> dict | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except Exception:  # botocore ClientError "does not exist"
        return None
    return stacks[0] if stacks else None


def deploy(
    settings: Settings,
    stage: str = "local",
    overrides: dict[str, str] | None = None,
    sam: Path | None = None,
) -> Deployed:
    """Build if needed and deploy `feed-<stage>` to the emulator; idempotent and quick when
    nothing changed."""
    if not settings.aws_endpoint_url:
        raise SystemExit("[deploy] AWS_ENDPOINT_URL is empty: deploy to AWS with `sam deploy`")
    t0 = time.monotonic()
    sam = sam or ensure_sam()
    build_dir, digest = build(sam)
    jwks_url = publish_jwks(settings)
    account_id = aws(settings, "sts").get_caller_identity()["Account"]
    parameters = {
        **stack_parameters(settings, stage, jwks_url, account_id),
        **publish_config(settings, stage),
        **(overrides or {}),
    }
    tag = hashlib.sha256((digest + json.dumps(parameters, sort_keys=True)).encode()).hexdigest()[
        :16
    ]
    cfn = aws(settings, "cloudformation")
    name = stack_name(stage)
    current = _stack(cfn, name)
    tags = {t["Key"]: t["Value"] for t in (current or {}).get("Tags", [])}
    fresh = not (
        current
        and current.get("StackStatus", "").endswith("_COMPLETE")
        and "ROLLBACK" not in current.get("StackStatus", "")
        and tags.get("feed-deploy") == tag
    )
    if fresh and current and current.get("StackStatus") in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED"):
        delete(settings, stage)  # a stack whose creation failed cannot be updated, only replaced
    if fresh:
        log(f"sam deploy {name}")
        s3 = aws(settings, "s3")
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        env = {**sam_env(), "AWS_ENDPOINT_URL": settings.aws_endpoint_url}
        env["AWS_DEFAULT_REGION"] = settings.aws_region
        out = subprocess.run(
            [
                str(sam),
                "deploy",
                "--template-file",
                str(build_dir / "template.yaml"),
                "--stack-name",
                name,
                "--s3-bucket",
                ARTIFACTS_BUCKET,
                "--s3-prefix",
                name,
                "--region",
                settings.aws_region,
                "--capabilities",
                "CAPABILITY_IAM",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--no-progressbar",
                "--parameter-overrides",
                # sam splits overrides on blanks: quote each value ("rate(5 minutes)").
                *(f'{k}="{v}"' for k, v in parameters.items()),
                "--tags",
                f"feed-deploy={tag}",
            ],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            print(out.stdout + out.stderr, file=sys.stderr)
            raise SystemExit(f"[deploy] sam deploy {name} failed")
        current = _stack(cfn, name)
    assert current is not None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in current.get("Outputs", [])}
    result = Deployed(
        stage=stage,
        stack_name=name,
        api_id=outputs["ApiId"],
        api_url=local_api_url(settings, outputs["ApiId"]),
        queue_url=outputs["FanoutQueueUrl"],
        dlq_url=outputs["FanoutDeadLetterQueueUrl"],
        issuer=parameters["JwtIssuer"],
        deployed=fresh,
        seconds=round(time.monotonic() - t0, 1),
        outputs=outputs,
    )
    (state_dir() / f"stack-{stage}.json").write_text(result.to_json())
    return result


def delete(settings: Settings, stage: str) -> None:
    cfn = aws(settings, "cloudformation")
    name = stack_name(stage)
    if _stack(cfn, name) is None:
        return
    cfn.delete_stack(StackName=name)
    for _ in range(100):
        if _stack(cfn, name) is None:
            break
        time.sleep(0.1)
    (state_dir() / f"stack-{stage}.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command", choices=["deploy", "validate", "build", "compile", "url", "delete"]
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=ROOT / ".aws-sam" / "build",
        help="for `compile`: the sam build output to compile (default .aws-sam/build)",
    )
    parser.add_argument("--stage", default="local")
    parser.add_argument("--json", action="store_true", help="print the deployment as JSON")
    args = parser.parse_args(argv)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)
    settings = Settings.from_env(os.environ)
    if args.command == "validate":
        validate()
    elif args.command == "build":
        build()
    elif args.command == "compile":
        # For AWS: `sam build && python infra/deploy.py compile && sam deploy ...`
        log(f"{compile_bytecode(args.build_dir)} .pyc files under {args.build_dir}")
    elif args.command == "delete":
        delete(settings, args.stage)
    elif args.command == "url":
        print(json.loads((state_dir() / f"stack-{args.stage}.json").read_text())["api_url"])
    else:
        result = deploy(settings, args.stage)
        if args.json:
            print(result.to_json())
        else:
            what = "deployed" if result.deployed else "up to date"
            log(f"{result.stack_name} {what} in {result.seconds} s: {result.api_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
