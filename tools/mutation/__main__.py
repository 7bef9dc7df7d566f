"""``python -m tools.mutation`` (``make mutation``): mutate the core, run its own tests.

Each target is a module (plus its Lua scripts) and the one test file that is its
own. The source tree is copied to a scratch directory once; each mutant is written
there, the test file runs (``pytest -x``, stop at the first failure), and the file is
restored. A mutant is *killed* when the tests fail (or time out), *survives* when they
pass. Mutants listed in ``tools/mutation/equivalent.txt`` (with the reason) are left
out of the score: they change no behaviour. Observability-only lines (``log.``,
``metrics.``) are not mutated.

    python -m tools.mutation                      # every target
    python -m tools.mutation --only limiter,memo  # some targets
    python -m tools.mutation --list               # the mutants, not run

Exit 1 when a target is below ``--min-score`` (default 0.90).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.mutation.mutants import Mutant, mutants_of

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).resolve().parent / "equivalent.txt"
COPY = (
    "certsms",
    "config",
    "mensatek",
    "worker",
    "tasks",
    "sandbox",
    "tests",
    "examples",
    "pyproject.toml",
)
"""What the scratch tree holds: ``certsms/`` (its relative symlinks kept) makes every
``certsms.`` import resolve inside the scratch tree, not to the editable install."""
SKIP_NAMES = frozenset({"log", "logger", "metrics"})


@dataclass(frozen=True)
class Target:
    """A module (and its scripts) and its own test file."""

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS = (
    Target(
        "transition",
        ("worker/jobs/transition.py",),
        ("tests/worker/jobs/test_store.py", "tests/worker/jobs/test_transition.py"),
    ),
    Target(
        "limiter",
        ("worker/guard/limiter.py", "worker/guard/limiter.lua", "worker/guard/dispatch.lua"),
        ("tests/worker/guard/test_limiter.py",),
    ),
    Target("memo", ("worker/guard/memo.py",), ("tests/worker/guard/test_memo.py",)),
    Target(
        "breaker",
        ("worker/guard/breaker.py", "worker/guard/breaker.lua"),
        ("tests/worker/guard/test_breaker.py",),
    ),
    Target("answers", ("mensatek/answers.py",), ("tests/mensatek/test_answers.py",)),
    Target("validation", ("mensatek/validation.py",), ("tests/mensatek/test_validation.py",)),
)


def equivalent_keys() -> dict[str, str]:
    """``key → reason`` of the mutants listed as equivalent (``key  # reason`` lines)."""
    found: dict[str, str] = {}
    if not EQUIVALENT.exists():
        return found
    for raw in EQUIVALENT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, reason = line.rpartition("  # ")  # the code in a key may hold "  # " too
        found[key.strip()] = reason.strip()
    return found


def observability_lines(text: str) -> set[int]:
    """Lines of a Python module inside a call of ``log.*`` / ``metrics.*`` (whole call)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call):
            continue
        root = node.func
        while isinstance(root, ast.Attribute | ast.Call):
            root = root.value if isinstance(root, ast.Attribute) else root.func
        if isinstance(root, ast.Name) and root.id in SKIP_NAMES:
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def target_mutants(target: Target) -> list[Mutant]:
    """Every mutant of a target's sources, observability-only code left out."""
    found: list[Mutant] = []
    for source in target.sources:
        text = (ROOT / source).read_text(encoding="utf-8")
        skip = observability_lines(text) if source.endswith(".py") else set()
        for mutant in mutants_of(source, text):
            if mutant.line in skip and not mutant.lua:
                continue
            found.append(mutant)
    return found


PREIMPORT = (
    "pytest",
    "redis",
    "pydantic",
    "pydantic_settings",
    "dramatiq",
    "structlog",
    "prometheus_client",
    "requests",
    "waitress",
    "werkzeug",
    "hypothesis",
    "tenacity",
)
"""Third-party packages imported once by this process, so each forked test run starts
warm; the project's own modules are imported fresh by every run (they are mutated)."""


def warm_up() -> None:
    """Import :data:`PREIMPORT` (whatever is installed) before any fork."""
    for name in PREIMPORT:
        try:
            __import__(name)
        except ImportError:
            continue


def run_tests(workdir: Path, tests: tuple[str, ...], timeout_s: float) -> tuple[bool, float]:
    """Run the test files in ``workdir`` in a forked child: (passed, seconds).

    The child gets its own process group (its Redis and worker processes die with it
    on a timeout) and imports the project from ``workdir``. A timeout counts as failed.
    """
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            os.setpgrp()
            os.chdir(workdir)
            sys.path.insert(0, str(workdir))
            for name in [k for k in os.environ if k.startswith(("CERTSMS_", "MENSATEK_"))]:
                del os.environ[name]
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import certsms

            if not Path(certsms.__file__).resolve().is_relative_to(workdir.resolve()):
                code = 4  # the project would be imported from outside the scratch tree
                raise SystemExit(code)
            import pytest

            code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests]))
        finally:
            os._exit(code)
    deadline = started + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0, time.monotonic() - started
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False, time.monotonic() - started
        time.sleep(0.05)


def copy_tree(into: Path) -> None:
    """The source tree the mutants are written into (never the working tree itself)."""
    for name in COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, into / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, into / name)


def run_target(
    target: Target,
    workdir: Path,
    equivalent: dict[str, str],
    previous: dict[str, object] | None = None,
) -> dict[str, object]:
    """Baseline, then every mutant of one target; the target's counts and survivors.

    With ``previous`` (this target's result from an earlier run of the same sources),
    the mutants it killed are not run again (they stay killed); the rest run.
    """
    tests = tuple(t for t in target.tests if (workdir / t).exists())
    target = Target(target.name, target.sources, tests)
    ok, baseline_s = run_tests(workdir, target.tests, timeout_s=600)
    if not ok:
        raise SystemExit(
            f"{target.name}: its tests fail without any mutant (or the project is imported"
            " from outside the scratch tree); fix that first"
        )
    timeout_s = max(30.0, baseline_s * 4 + 10)
    mutants = target_mutants(target)
    killed_keys: list[str] = []
    survived: list[str] = []
    excluded: list[str] = []
    done_before: set[str] = set()
    if previous is not None:  # what the earlier run killed stays killed; the rest runs
        done_before = set(previous.get("killed_keys") or [])  # type: ignore[call-overload]
    for number, mutant in enumerate(mutants, 1):
        if mutant.code_key() in equivalent:
            excluded.append(mutant.key())
            continue
        if mutant.key() in done_before:
            killed_keys.append(mutant.key())  # killed in the earlier run
            continue
        path = workdir / mutant.path
        original = path.read_text(encoding="utf-8")
        path.write_text(mutant.apply(original), encoding="utf-8")
        try:
            passed, _ = run_tests(workdir, target.tests, timeout_s)
        finally:
            path.write_text(original, encoding="utf-8")
        if passed:
            survived.append(mutant.key())
        else:
            killed_keys.append(mutant.key())
        print(
            f"  {target.name} {number}/{len(mutants)} {'SURVIVED' if passed else 'killed  '}"
            f" {mutant.key()}",
            flush=True,
        )
    killed = len(killed_keys)
    scored = killed + len(survived)
    return {
        "mutants": len(mutants),
        "equivalent": len(excluded),
        "killed": killed,
        "survived": survived,
        "killed_keys": killed_keys,
        "score": round(killed / scored, 3) if scored else 1.0,
        "baseline_s": round(baseline_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--min-score", type=float, default=0.90)
    parser.add_argument("--output", default=str(ROOT / "var" / "mutation.json"))
    parser.add_argument(
        "--resume", default="", help="a previous --output: run only what it did not kill"
    )
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if not args.only or t.name in args.only.split(",")]
    equivalent = equivalent_keys()
    if args.list:
        for target in chosen:
            for mutant in target_mutants(target):
                mark = "  (equivalent)" if mutant.code_key() in equivalent else ""
                print(f"{target.name}: {mutant.key()}  {mutant.code_key()}{mark}")
        return 0
    warm_up()
    results: dict[str, dict[str, object]] = {}
    previous: dict[str, dict[str, object]] = {}
    if args.resume:
        previous = json.loads(Path(args.resume).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="certsms-mutation-") as tmp:
        workdir = Path(tmp)
        copy_tree(workdir)
        for target in chosen:
            print(f"{target.name}: {', '.join(target.sources)} ← {', '.join(target.tests)}")
            results[target.name] = run_target(
                target, workdir, equivalent, previous.get(target.name)
            )
    print("\n| module | mutants | equivalent | killed | survived | score |")
    print("|---|---|---|---|---|---|")
    failed = False
    for name, r in results.items():
        survived = r["survived"]
        assert isinstance(survived, list)
        print(
            f"| {name} | {r['mutants']} | {r['equivalent']} | {r['killed']} | "
            f"{len(survived)} | {float(r['score']):.0%} |"  # type: ignore[arg-type]
        )
        failed = failed or float(r["score"]) < args.min_score  # type: ignore[arg-type]
    for name, r in results.items():
        for key in r["survived"]:  # type: ignore[attr-defined]
            print(f"survived  {name}: {key}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
