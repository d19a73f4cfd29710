"""``cliplab`` command line: list | run | replicate | report | claims freeze | verify | new | stages | zoo | sample-data.

The top layer: the one module that wires the workbench core, the model zoo and the scaffolding together
(docs/architecture.md). Exit codes: 0 success, 1 a run or check failed, 2 bad input (nothing was touched).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cliplab.core import paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# The errors that end a command with one line instead of a traceback, by the module that defines them. Commands
# import what they need when they run (jupytext, papermill, scipy and torch take seconds), so `cliplab --help`
# loads none of them; an error can only have been raised once its module is loaded, so it is looked up there.
_ERRORS = {
    ("cliplab.core.parameters", "ParameterError"): EXIT_USAGE,
    ("cliplab.core.scaffold", "ScaffoldError"): EXIT_USAGE,
    ("cliplab.core.claims", "ClaimsError"): EXIT_FAILED,
    ("cliplab.core.runner", "RunFailed"): EXIT_FAILED,
    ("cliplab.real.options", "RealPathError"): EXIT_USAGE,
}


def _exit_code(err: BaseException) -> int | None:
    """The exit code of a known error (see ``_ERRORS``), or None for one that should show its traceback."""
    for (module, name), code in _ERRORS.items():
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(err, cls):
            return code
    return EXIT_USAGE if isinstance(err, FileNotFoundError) else None


def papers(root: Path) -> list[str]:
    from cliplab.core.runner import papers as listed

    return listed(root)


def _fail(code: int, message: str) -> int:
    print(f"cliplab: {message}", file=sys.stderr)
    return code


def cmd_list(args: argparse.Namespace, root: Path) -> int:
    """Print papers, their parameters (name, type, default, help) and claims."""
    from cliplab.core.claims import load_claims
    from cliplab.core.runner import declared_parameters

    listing = []
    for paper in papers(root):
        params = declared_parameters(root, paper)
        title, claims = load_claims(paths.claims_path(root, paper))
        listing.append({
            "paper": paper,
            "title": title,
            "parameters": [
                {"name": p.name, "type": p.type, "default": p.default, "help": p.help}
                for p in params.values() if p.name != "out_dir"
            ],
            "claims": [{"id": c.id, "claim": c.claim} for c in claims],
        })
    if args.json:
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    for entry in listing:
        print(f"{entry['paper']} — {entry['title']}")
        print("  parameters:")
        for p in entry["parameters"]:
            print(f"    {p['name']}: {p['type']} = {p['default']!r}  # {p['help']}")
        print("  claims:")
        for c in entry["claims"]:
            print(f"    {c['id']}: {c['claim']}")
        print()
    return EXIT_OK


REAL_FLAGS = ("model", "pretrained", "device", "batch_size")


def _real_overrides(args: argparse.Namespace, root: Path, paper: str) -> dict[str, object]:
    """--model/--pretrained/--device/--batch-size and the --data folder's options, as notebook parameters
    (only those the paper's notebook declares; a paper without a real path gets an error naming it)."""
    from cliplab.core.parameters import ParameterError
    from cliplab.core.runner import declared_parameters

    given = {k: getattr(args, k) for k in REAL_FLAGS if getattr(args, k, None) not in (None, "")}
    if getattr(args, "data", None):
        from cliplab.real.options import options_from_folder

        given.update(options_from_folder(args.data))
    if not given:
        return {}
    declared = declared_parameters(root, paper)
    if "model" not in declared:
        raise ParameterError(f"{paper} takes no CLIP (its experiments train their own networks): "
                             "--model/--data do not apply to it")
    return {k: v for k, v in given.items() if k in declared}


def cmd_run(args: argparse.Namespace, root: Path) -> int:
    from cliplab.core.parameters import parse_assignments
    from cliplab.core.runner import run_paper

    overrides = {**_real_overrides(args, root, args.paper), **parse_assignments(args.set or [])}
    result = run_paper(
        args.paper, smoke=args.smoke, overrides=overrides, timeout=args.timeout,
        out=Path(args.out) if args.out else None, root=root, log_output=args.verbose,
    )
    print(f"{result.paper}: done in {result.seconds:.1f}s -> {result.out_dir}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace, root: Path) -> int:
    from cliplab.core.claims import write_report

    if args.real or args.model:
        from cliplab.real.report import write_real_report

        slug = args.real or paths.model_slug(args.model, args.pretrained or "")
        target, text = write_real_report(root, papers(root), slug, smoke=args.smoke)
    else:
        target, text = write_report(root, papers(root), smoke=args.smoke)
    print(text)
    print(f"written to {target}")
    return EXIT_OK


def _env_with_venv_on_path() -> dict[str, str]:
    """DVC stages call ``cliplab``; make sure it resolves to this interpreter's environment."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def cmd_replicate_real(args: argparse.Namespace, root: Path) -> int:
    """Every paper with a real path on one model and its data, then that model's own scoreboard."""
    from cliplab.core.runner import RunFailed, run_paper
    from cliplab.real.options import RealOptions, RealPathError, validate
    from cliplab.real.report import takes_a_model, write_real_report

    if not args.data:
        return _fail(EXIT_USAGE, "--model needs --data DIR (images/, test_images/, ood/<shift>/, corpus.*, "
                     "colour_images/; `cliplab sample-data --real DIR` writes an example)")
    try:  # the model and the folder are checked once, before any paper runs
        _real_overrides(args, root, next(p for p in papers(root) if takes_a_model(root, p)))
        validate(RealOptions(model=args.model, pretrained=args.pretrained or "", device=args.device or "auto"), [])
    except RealPathError as err:
        return _fail(EXIT_USAGE, str(err))
    failed = []
    for paper in papers(root):
        if not takes_a_model(root, paper):
            print(f"{paper}: takes no CLIP; its claims are listed as not testable on this model")
            continue
        try:
            result = run_paper(paper, smoke=args.smoke, overrides=_real_overrides(args, root, paper), root=root)
            print(f"{paper}: done in {result.seconds:.1f}s -> {result.out_dir}")
        except RunFailed as err:
            print(f"cliplab: {err}", file=sys.stderr)
            failed.append(paper)
    target, text = write_real_report(root, papers(root), paths.model_slug(args.model, args.pretrained or ""),
                                     smoke=args.smoke)
    print(text)
    print(f"written to {target}")
    return _fail(EXIT_FAILED, f"failed: {', '.join(failed)}; see above") if failed else EXIT_OK


def cmd_replicate(args: argparse.Namespace, root: Path) -> int:
    if args.model:
        return cmd_replicate_real(args, root)
    if args.data:
        return _fail(EXIT_USAGE, "--data needs --model (the CLIP to run on it)")
    dvc = shutil.which("dvc", path=_env_with_venv_on_path()["PATH"])
    if dvc is None:
        return _fail(EXIT_USAGE, "dvc is not installed in this environment; run 'make setup' first")
    target = "smoke-report" if args.smoke else "report"
    proc = subprocess.run([dvc, "repro", target], cwd=root, env=_env_with_venv_on_path())
    if proc.returncode != 0:
        return _fail(EXIT_FAILED, f"'dvc repro {target}' failed (exit {proc.returncode}); see the output above")
    report = paths.replications_dir(root) / ("smoke" if args.smoke else "") / "REPORT.md"
    print(report.read_text())
    return EXIT_OK


def cmd_transfer(args: argparse.Namespace, root: Path) -> int:
    """``cliplab pull|push [TARGET...]``: probe the DVC remote (seconds, not minutes), then dvc pull/push."""
    from cliplab.core.remote import RemoteUnreachable, check_host_key, check_reachable, resolve_remote

    dvc = shutil.which("dvc", path=_env_with_venv_on_path()["PATH"])
    if dvc is None:
        return _fail(EXIT_USAGE, "dvc is not installed in this environment; run 'make setup' first")
    try:
        remote = resolve_remote(root, args.remote)
        check_reachable(remote, push=args.command == "push")
        check_host_key(remote)
    except RemoteUnreachable as err:
        return _fail(EXIT_FAILED, f"{args.command}: {err}")
    targets = args.targets or ["report"]
    cmd = [dvc, args.command, "-r", remote.name, *targets, *(["--with-deps"] if args.with_deps else [])]
    proc = subprocess.run(cmd, cwd=root, env=_env_with_venv_on_path(), check=False)
    if proc.returncode != 0:
        return _fail(EXIT_FAILED, f"'{' '.join(cmd[1:])}' failed (exit {proc.returncode}); see the output above")
    return EXIT_OK


def cmd_claims(args: argparse.Namespace, root: Path) -> int:
    """Freeze checks: record each check's hash and date, and any change after a run, in claims.yaml."""
    from cliplab.core.freeze import freeze

    chosen = args.papers or papers(root)
    unknown = sorted(set(chosen) - set(papers(root)))
    if unknown:
        return _fail(EXIT_USAGE, f"unknown paper(s) {', '.join(unknown)}; papers are {', '.join(papers(root))}")
    for paper in chosen:
        for line in freeze(root, paper, reason=args.reason, since=args.since) or [f"{paper}: every check frozen"]:
            print(line)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, root: Path) -> int:
    """Compare this machine's metrics and verdicts with versioned ones; exit 1 on a verdict change."""
    from cliplab.core import verify

    here_dir = paths.replications_dir(root) / ("smoke" if args.smoke else "")
    changed, contradicting, compared = 0, 0, 0
    for paper in papers(root):
        ours = verify.load_metrics(here_dir, paper)
        if ours is None:
            print(f"{paper}: no metrics.json here ({here_dir / paper}); run it first")
            continue
        try:
            theirs = (verify.load_metrics(Path(args.against), paper) if args.against
                      else verify.versioned_metrics(root, paper, args.smoke, args.rev))
        except Exception as err:  # dvc raises many kinds; the message names the file and the remote
            return _fail(EXIT_FAILED, f"{paper}: cannot read the versioned metrics.json ({err}); "
                         "`dvc pull` them, or pass --against FOLDER")
        if theirs is None:
            print(f"{paper}: no versioned metrics.json under {args.against}")
            continue
        rows = verify.compare(paths.claims_path(root, paper), ours, theirs, args.smoke)
        print("\n".join(verify.render(paper, rows)))
        changed += sum(not r.same_verdict for r in rows)
        contradicting += sum(r.contradicts for r in rows)
        compared += len(rows)
    print(f"{compared} claims compared, {changed} with a different verdict, {contradicting} of them contradicting "
          "(replicates on one side, does not replicate on the other)")
    return EXIT_FAILED if changed else EXIT_OK


def cmd_reseed(args: argparse.Namespace, root: Path) -> int:
    """Clone the project with every seed moved by OFFSET: the second independent run of the verdicts."""
    from cliplab.core.reseed import make_workspace
    from cliplab.core.sample_data import write_sample

    try:
        target = make_workspace(root, Path(args.folder).resolve(), args.offset)
    except (ValueError, FileExistsError) as err:
        return _fail(EXIT_USAGE, str(err))
    write_sample(target / "data")
    print(f"reseeded workspace (seeds + {args.offset}) in {target}. Run it, then compare the verdicts:\n"
          f"  cd {target} && cliplab replicate\n"
          f"  cd {root} && cliplab verify --against {target / 'replications'}")
    return EXIT_OK


def cmd_new(args: argparse.Namespace, root: Path) -> int:
    """Scaffold a paper, run its smoke notebook once and keep those metrics as this CPU's golden variant."""
    from cliplab.core import scaffold
    from cliplab.core.runner import run_paper

    written = scaffold.new_paper(root, args.paper, args.title)
    print("written: " + ", ".join(written))
    result = run_paper(args.paper, smoke=True, root=root)
    golden = scaffold.record_golden(root, args.paper, (result.out_dir / "metrics.json").read_bytes())
    print(f"{args.paper}: smoke run done in {result.seconds:.1f}s -> {result.out_dir}; golden smoke metrics "
          f"recorded at {golden.relative_to(root)}")
    print(f"next: replace the toy experiment in lib/cliplab/{args.paper}/ and the example claim, then "
          "`make test` (README: 'Adding a paper')")
    return EXIT_OK


def cmd_stages(args: argparse.Namespace, root: Path) -> int:
    """Rewrite dvc.yaml from params.yaml's papers and the code's import graph."""
    from cliplab.core import pipeline

    print(f"written {pipeline.write(root).relative_to(root)}")
    return EXIT_OK


def cmd_sample_data(args: argparse.Namespace, root: Path) -> int:
    if args.real:
        from cliplab.real.sample import write_real_sample

        out = write_real_sample(Path(args.out_dir or "real-sample").resolve())
        print(f"real-photograph sample written to {out}; try: cliplab replicate --smoke --model ViT-B-32 --data {out}")
        return EXIT_OK
    from cliplab.core.sample_data import write_sample

    out = write_sample(root / (args.out_dir or "data"))
    print(f"sample data written to {out}")
    return EXIT_OK


def _add_real_flags(parser: argparse.ArgumentParser) -> None:
    """Your own CLIP and data, named the same for every paper (the notebooks' parameters of the same names)."""
    group = parser.add_argument_group("your own model and data")
    group.add_argument("--model", default="", help="open_clip name, weights file, local-dir:FOLDER or hf-hub:ORG/REPO")
    group.add_argument("--pretrained", default="", help="pretrained tag or weights file for --model")
    group.add_argument("--data", default="", metavar="DIR", help="images/, test_images/, ood/<shift>/, corpus.*, "
                       "colour_images/ (each paper takes what it reads)")
    group.add_argument("--device", default="", help="auto (default: cuda when present), cpu, cuda or mps")
    group.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="images per forward pass")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cliplab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="papers, their parameters and claims")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=cmd_list)

    p_run = sub.add_parser("run", help="execute one paper's notebook and publish its outputs")
    p_run.add_argument("paper")
    p_run.add_argument("--smoke", action="store_true", help="tiny scale: a wiring check in seconds")
    p_run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a notebook parameter")
    p_run.add_argument("--timeout", type=float, default=None, help="seconds any one cell may run")
    p_run.add_argument("--out", help="output folder (default replications/PAPER, or replications/smoke/PAPER)")
    p_run.add_argument("--verbose", action="store_true", help="stream the notebook's own output")
    _add_real_flags(p_run)
    p_run.set_defaults(func=cmd_run)

    p_rep = sub.add_parser("replicate", help="run every paper through the DVC pipeline, then the scoreboard; "
                           "with --model/--data: every CLIP paper on your model, then its own scoreboard")
    p_rep.add_argument("--smoke", action="store_true", help="the smoke pipeline (separate outputs)")
    _add_real_flags(p_rep)
    p_rep.set_defaults(func=cmd_replicate)

    for verb, direction in (("pull", "fetch versioned artifacts from"), ("push", "store artifacts in")):
        p_move = sub.add_parser(verb, help=f"{direction} the DVC remote (checked for reachability first)")
        p_move.add_argument("targets", nargs="*", help="DVC stages or .dvc files (default: report)")
        p_move.add_argument("-r", "--remote", default=None, help="remote name (default: DVC's default remote)")
        p_move.add_argument("--no-deps", dest="with_deps", action="store_false",
                            help="only the named targets, not the stages they depend on")
        p_move.set_defaults(func=cmd_transfer)

    p_report = sub.add_parser("report", help="check claims against metrics and write REPORT.md")
    p_report.add_argument("--smoke", action="store_true", help="score the smoke outputs")
    p_report.add_argument("--real", default="", metavar="SLUG", help="a real model's runs (replications/real/SLUG)")
    p_report.add_argument("--model", default="", help="the real model's runs, by --model (and --pretrained)")
    p_report.add_argument("--pretrained", default="", help="with --model")
    p_report.set_defaults(func=cmd_report)

    p_claims = sub.add_parser("claims", help="'claims freeze [PAPER...] --reason TEXT': freeze the checks")
    p_claims.add_argument("action", choices=["freeze"])
    p_claims.add_argument("papers", nargs="*", help="papers to freeze (default: all)")
    p_claims.add_argument("--reason", default="", help="why a check changed (required after a recorded result)")
    p_claims.add_argument("--since", default="HEAD", help="git revision whose checks count as the frozen ones")
    p_claims.set_defaults(func=cmd_claims)

    p_verify = sub.add_parser("verify", help="compare this machine's metrics and verdicts with versioned ones")
    p_verify.add_argument("--against", default="", help="folder with PAPER/metrics.json (default: via DVC)")
    p_verify.add_argument("--rev", default="HEAD", help="git revision whose dvc.lock names the versioned results")
    p_verify.add_argument("--smoke", action="store_true", help="compare the smoke outputs")
    p_verify.set_defaults(func=cmd_verify)

    p_reseed = sub.add_parser("reseed", help="clone the project with every seed moved by OFFSET (a second run)")
    p_reseed.add_argument("offset", type=int, help="added to every seed (zoo worlds and models, paper seeds)")
    p_reseed.add_argument("folder", help="new folder for the clone")
    p_reseed.set_defaults(func=cmd_reseed)

    p_new = sub.add_parser("new", help="scaffold a new replication (package, notebook, claims, params, stages, test)")
    p_new.add_argument("paper", help="lower-case identifier, e.g. my_paper")
    p_new.add_argument("--title", help="the notebook's title (default: from the name)")
    p_new.set_defaults(func=cmd_new)

    p_stages = sub.add_parser("stages", help="rewrite dvc.yaml from params.yaml and the code's import graph")
    p_stages.set_defaults(func=cmd_stages)

    sub.add_parser("zoo", help="the model zoo: 'zoo [--smoke] list', 'zoo [--smoke] train NAME... | --all'")

    p_sample = sub.add_parser("sample-data", help="write the deterministic default contents of data/ "
                              "(--real: the real-photograph sample for --model/--data)")
    p_sample.add_argument("out_dir", nargs="?", default="", help="default: data (or real-sample with --real)")
    p_sample.add_argument("--real", action="store_true", help="photographs from scikit-image, a caption corpus, "
                          "shifted and colour folders: the layout --data reads")
    p_sample.set_defaults(func=cmd_sample_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["zoo"]:  # its own argparse (cliplab.zoo.main), so `cliplab zoo --help` is the zoo's
        from cliplab import zoo

        try:
            return zoo.main(argv[1:])
        except (ValueError, FileNotFoundError) as err:
            return _fail(EXIT_USAGE, str(err))
    args = build_parser().parse_args(argv)
    try:
        root = paths.project_root()
        return args.func(args, root)
    except KeyboardInterrupt:
        return _fail(EXIT_FAILED, "interrupted; previous outputs are untouched")
    except BrokenPipeError:  # e.g. `cliplab report | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as err:
        code = _exit_code(err)
        if code is None:
            raise
        return _fail(code, str(err))


if __name__ == "__main__":
    sys.exit(main())
